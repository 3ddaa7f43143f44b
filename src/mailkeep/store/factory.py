"""Open the store a configuration names: ``sqlite:PATH`` or ``postgresql://…``."""

from __future__ import annotations

from pathlib import Path

from mailkeep.errors import ConfigError
from mailkeep.store.sqlstore import SqlStore


async def open_store(url: str, data_dir: Path, *, pool_size: int = 10) -> SqlStore:
    if url.startswith("sqlite:"):
        from mailkeep.store.sqlite import SqliteEngine

        location = Path(url.removeprefix("sqlite:") or "store")
        root = location if location.is_absolute() else data_dir / location
        engine = await SqliteEngine.open(root / "mailkeep.sqlite3", root / "blobs", pool_size)
        return SqlStore(engine)
    if url.startswith(("postgresql://", "postgres://")):
        from mailkeep.store import postgres  # type: ignore[attr-defined,unused-ignore]

        engine_pg = await postgres.PostgresEngine.open(url, pool_size=pool_size)
        return SqlStore(engine_pg)
    raise ConfigError(f"store URL {url!r} is neither sqlite:PATH nor postgresql://...")
