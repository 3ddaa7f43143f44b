"""Online backup and restore of the SQLite store (``mailkeep backup`` / ``restore``).

A backup is a directory with ``mailkeep.sqlite3`` (a consistent snapshot taken with
SQLite's online backup API while the server keeps running; it holds the small message
blobs, ``inline_blobs``), ``blobs/`` (every blob file the snapshot names: hard links when
on the same filesystem, else copies, all synced) and ``manifest.json``. While a backup
runs it holds ``gc.lock`` shared, so the server's garbage collector cannot delete a blob
file the snapshot still names.

PostgreSQL stores are backed up with PostgreSQL's own tools (pg_dump, base backups), or
copied into a SQLite store with ``mailkeep store copy``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailkeep.errors import ConfigError, InUse
from mailkeep.store.blobs import FileBlobs

DB_NAME = "mailkeep.sqlite3"
GC_LOCK = "gc.lock"
FORMAT = 1


@dataclass(frozen=True)
class BackupResult:
    path: Path
    accounts: int
    messages: int
    blobs: int
    octets: int


@contextlib.contextmanager
def gc_paused(store_root: Path) -> Iterator[None]:
    """Hold the collector off (shared lock) for the duration."""
    store_root.mkdir(parents=True, exist_ok=True)
    with open(store_root / GC_LOCK, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def backup(
    store_root: Path, target: Path, progress: Callable[[int, int], None] = lambda done, n: None
) -> BackupResult:
    database = store_root / DB_NAME
    if not database.exists():
        raise ConfigError(f"no SQLite store at {store_root}")
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"backup target {target} exists and is not empty")
    target.mkdir(parents=True, exist_ok=True)
    source_blobs = FileBlobs(store_root / "blobs")
    target_blobs = FileBlobs(target / "blobs")
    with gc_paused(store_root):
        source = sqlite3.connect(database)
        snapshot = sqlite3.connect(target / DB_NAME)
        try:
            source.backup(snapshot)
            snapshot.execute("PRAGMA journal_mode = DELETE")
            blobs = _blob_files(snapshot)
            inline = _inline_blobs(snapshot)
            accounts = snapshot.execute("SELECT count(*) FROM accounts").fetchone()[0]
            messages = snapshot.execute("SELECT count(*) FROM messages").fetchone()[0]
        finally:
            snapshot.close()
            source.close()
        octets = int(inline[1])
        for done, blob in enumerate(blobs, 1):
            octets += _link_or_copy(source_blobs.path(blob), target_blobs.path(blob))
            progress(done, len(blobs))
    _fsync_file(target / DB_NAME)
    manifest = {
        "format": FORMAT,
        "created": int(time.time()),
        "accounts": accounts,
        "messages": messages,
        "blobs": len(blobs) + inline[0],
        "octets": octets,
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _fsync_file(target / "manifest.json")
    return BackupResult(target, accounts, messages, manifest["blobs"], octets)


def restore(source: Path, store_root: Path, *, force: bool) -> BackupResult:
    """Replace the store at ``store_root`` with the backup at ``source``. The server
    must not be running (``serve.lock`` in the data directory is checked by the CLI)."""
    manifest_path = source / "manifest.json"
    if not manifest_path.exists() or not (source / DB_NAME).exists():
        raise ConfigError(f"{source} is not a mailkeep backup (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{source}: unknown backup format {manifest.get('format')!r}")
    database = store_root / DB_NAME
    if database.exists() and not force:
        raise ConfigError(f"a store exists at {store_root}; restore with --force to replace it")
    source_blobs = FileBlobs(source / "blobs")
    target_blobs = FileBlobs(store_root / "blobs")
    with contextlib.closing(sqlite3.connect(source / DB_NAME)) as snapshot:
        blobs = _blob_files(snapshot)
    missing = [b for b in blobs if not source_blobs.path(b).exists()]
    if missing:
        raise ConfigError(f"the backup lacks {len(missing)} message blob(s), e.g. {missing[0]}")
    octets = sum(_link_or_copy(source_blobs.path(b), target_blobs.path(b)) for b in blobs)
    for suffix in ("-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    staging = store_root / (DB_NAME + ".restoring")
    shutil.copyfile(source / DB_NAME, staging)
    _fsync_file(staging)
    os.replace(staging, database)
    return BackupResult(
        store_root, manifest["accounts"], manifest["messages"], manifest["blobs"], octets
    )


@contextlib.contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Held by ``mailkeep serve``; restore refuses to run while a server holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "serve.lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"a mailkeep server is running on {data_dir}") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _has_inline_blobs(snapshot: sqlite3.Connection) -> bool:
    """Whether the snapshot has migration 0008's table (a backup taken before has not)."""
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inline_blobs'"
    return snapshot.execute(query).fetchone() is not None


def _blob_files(snapshot: sqlite3.Connection) -> list[str]:
    """The blobs the snapshot names that are files (the rest are in it)."""
    query = "SELECT blob FROM contents ORDER BY blob"
    if _has_inline_blobs(snapshot):
        query = (
            "SELECT blob FROM contents WHERE blob NOT IN (SELECT hash FROM inline_blobs)"
            " ORDER BY blob"
        )
    return [row[0] for row in snapshot.execute(query)]


def _inline_blobs(snapshot: sqlite3.Connection) -> tuple[int, int]:
    """How many blobs the snapshot holds itself, and their octets."""
    if not _has_inline_blobs(snapshot):
        return 0, 0
    query = "SELECT count(*), coalesce(sum(length(data)), 0) FROM inline_blobs"
    count, octets = snapshot.execute(query).fetchone()
    return int(count), int(octets)


def _link_or_copy(source: Path, target: Path) -> int:
    size = source.stat().st_size
    if target.exists():
        return size
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        _fsync_file(tmp)
        os.replace(tmp, target)
    return size


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
