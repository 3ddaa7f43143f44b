"""Versioned schema migrations: ``<dialect>/NNNN_name.sql``, applied in order, once.

The applied version is kept in ``schema_version``; a store newer than this code refuses to
open rather than guess.
"""

from __future__ import annotations

from importlib import resources

from mailkeep.errors import ConfigError


def available(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration for ``dialect``, in order."""
    folder = resources.files(__package__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


def pending(dialect: str, current: int) -> list[tuple[int, str, str]]:
    migrations = available(dialect)
    latest = migrations[-1][0] if migrations else 0
    if current > latest:
        raise ConfigError(
            f"the store has schema version {current}, newer than this mailkeep knows"
            f" ({latest}): upgrade mailkeep"
        )
    return [m for m in migrations if m[0] > current]
