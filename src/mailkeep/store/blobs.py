"""Message blobs as content-addressed files: ``ROOT/ab/cd/abcd…`` named by SHA-256 (the SQLite
store keeps blobs up to 128 KiB in its database instead: ``store/sqlite.py``).

A blob is written to a temporary file, synced, renamed into place and its directory
synced, all before any row names it; a blob is never modified. Deleting is the store's
job (``DeleteBlob``), serialised with the checks of new references.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import re
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from mailkeep.errors import NotFound, TemporaryFailure

# Reads up to this size are served on the event loop thread: from the page cache they
# cost microseconds, less than a hop to a worker thread.
_INLINE_READ = 256 * 1024

_NAME = re.compile("[0-9a-f]{64}")

_LIBC = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
)


class FileBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = f"{root}{os.sep}"
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._unsynced: set[Path] = set()
        self._unsynced_lock = threading.Lock()

    def path(self, blob: str) -> Path:
        return Path(self._file(blob))

    def _file(self, blob: str) -> str:
        """The path of ``blob`` as a string: built per message downloaded, where
        ``pathlib`` would cost more than opening the file."""
        if _NAME.fullmatch(blob) is None:
            raise NotFound(f"malformed blob name {blob!r}")
        return f"{self._prefix}{blob[:2]}{os.sep}{blob[2:4]}{os.sep}{blob}"

    def exists(self, blob: str) -> bool:
        return self.path(blob).exists()

    def put(self, blob: str, data: bytes, *, sync: bool = True) -> None:
        """Store ``data`` under ``blob`` (no-op if already there).

        With ``sync`` the file and its name are on disk when this returns. Without, the
        blob is remembered and made durable by the next ``sync_pending`` — the writer
        calls it once per group commit, before the rows naming the blobs commit, so one
        sync covers a whole batch of deliveries.
        """
        final = self.path(blob)
        if final.exists():
            return
        try:
            tmp = self._tmp / f"{blob}.{os.getpid()}.{threading.get_ident():x}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.replace(tmp, final)
            except FileNotFoundError:
                # The first blob under this prefix: its directories are made only now,
                # so that every other put skips a mkdir (and the stat that follows its
                # EEXIST) per message.
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            if sync:
                _fsync_dir(final.parent)
            else:
                with self._unsynced_lock:
                    self._unsynced.add(final)
        except OSError as exc:
            raise TemporaryFailure(f"cannot store message: {exc.strerror}") from exc

    def sync_pending(self) -> None:
        """Make every blob written with ``sync=False`` so far durable: one ``syncfs`` of
        the blob filesystem (Linux), else an fsync of each file and directory."""
        with self._unsynced_lock:
            pending, self._unsynced = self._unsynced, set()
        if not pending:
            return
        try:
            if not _syncfs(self.root):
                for path in pending:
                    _fsync_file(path)
                for directory in {path.parent for path in pending}:
                    _fsync_dir(directory)
        except OSError as exc:
            with self._unsynced_lock:
                self._unsynced |= pending
            raise TemporaryFailure(f"cannot sync stored messages: {exc.strerror}") from exc

    def read(self, blob: str) -> bytes:
        try:
            return self.path(blob).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"message blob {blob} is missing") from None

    def delete(self, blob: str) -> None:
        try:
            self.path(blob).unlink()
        except FileNotFoundError:
            pass

    def all_blobs(self) -> list[str]:
        """Every stored blob name (for `mailkeep check`)."""
        return [p.name for p in self.root.glob("??/??/*") if len(p.name) == 64]

    def open(self, blob: str) -> FileBlobReader:
        try:
            return FileBlobReader(os.open(self._file(blob), os.O_RDONLY))
        except FileNotFoundError:
            raise NotFound(f"message blob {blob} is missing") from None


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the filesystem holding ``path``; False where it does not exist."""
    if _LIBC is None or not hasattr(_LIBC, "syncfs"):
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    finally:
        os.close(fd)
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RangeReader(Protocol):
    size: int

    async def read(self, offset: int, length: int) -> bytes: ...


async def read_chunks(
    reader: RangeReader, offset: int, length: int, chunk: int = 65536
) -> AsyncIterator[bytes]:
    """``length`` octets from ``offset`` (clipped to the blob), ``chunk`` at a time: what
    every backend's ``BlobReader.chunks`` is."""
    end = min(reader.size, offset + length)
    while offset < end:
        data = await reader.read(offset, min(chunk, end - offset))
        if not data:
            return
        offset += len(data)
        yield data


class BytesBlobReader:
    """A blob small enough to be held whole (the SQLite store's inline blobs)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    async def read(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + max(0, length)]

    def chunks(self, offset: int, length: int, chunk: int = 65536) -> AsyncIterator[bytes]:
        return read_chunks(self, offset, length, chunk)

    async def close(self) -> None:
        self._data = b""


class FileBlobReader:
    """Random access to one blob; reads never load more than asked."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.size = os.fstat(fd).st_size

    async def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if length <= _INLINE_READ:
            return os.pread(self._fd, length, offset)
        return await asyncio.get_running_loop().run_in_executor(
            None, os.pread, self._fd, length, offset
        )

    def chunks(self, offset: int, length: int, chunk: int = 65536) -> AsyncIterator[bytes]:
        return read_chunks(self, offset, length, chunk)

    async def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def fileno(self) -> int:
        return self._fd
