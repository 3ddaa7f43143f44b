"""The local store: Maildir folders in the Maildir++ layout, readable by mutt, neomutt, aerc
and notmuch.

Layout (documented for users in the accounts file reference):

- The store root is INBOX: ``ROOT/{tmp,new,cur}``.
- Every other folder is a dot-directory of the root, its hierarchy joined with dots:
  IMAP ``Archive/2024`` (whatever the server's delimiter) is ``ROOT/.Archive.2024``. This is
  Maildir++ (Courier, Dovecot); mutt reads each as a Maildir (``mailboxes =.Archive.2024``
  with ``folder=ROOT``). A ``maildirfolder`` marker file is created as Maildir++ asks.
- A ``.``, ``/`` or ``%`` inside one name component is written ``%2E``, ``%2F``, ``%25`` so
  that the hierarchy stays unambiguous.
- Files are named ``TIME.M<usec>P<pid>Q<n>R<random>.HOST:2,FLAGS`` (the Maildir spec by D. J.
  Bernstein, http://cr.yp.to/proto/maildir.html); the part before ``:`` is the message's
  *key*, stable while the file moves from ``new`` to ``cur`` or changes flags.
- Flags are the info letters in ASCII order: ``D`` draft, ``F`` flagged, ``P`` passed,
  ``R`` replied, ``S`` seen, ``T`` trashed.

Writes are durable: a message is written into ``tmp``, fsynced, renamed into ``new``/``cur``
and the directory fsynced, before anyone (the POP3 fetcher's DELE) relies on it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mailkeep.errors import InvalidName

FLAG_LETTERS = "DFPRST"
INFO_SEPARATOR = ":2,"
_counter = itertools.count()

FolderName = tuple[str, ...]
"""A folder's hierarchy components, e.g. ``("Archive", "2024")``; ``("INBOX",)`` is the root."""
INBOX: FolderName = ("INBOX",)


@dataclass(frozen=True)
class MessageFile:
    key: str
    path: Path
    flags: str
    """Standard flag letters only (uppercase), sorted."""

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def mtime(self) -> float:
        return self.path.stat().st_mtime


def normalize_flags(letters: str) -> str:
    return "".join(sorted(set(letters) & set(FLAG_LETTERS)))


def split_name(filename: str) -> tuple[str, str, str]:
    """``key:2,FLAGS`` → (key, standard flags, other info letters such as keywords)."""
    key, sep, info = filename.partition(INFO_SEPARATOR)
    if not sep:
        key = filename.partition(":")[0]
        return key, "", ""
    standard = normalize_flags(info)
    other = "".join(c for c in info if c not in FLAG_LETTERS)
    return key, standard, other


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Maildir:
    """One Maildir folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return all((self.path / sub).is_dir() for sub in ("cur", "new", "tmp"))

    def create(self, marker: bool = False) -> None:
        for sub in ("cur", "new", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        if marker:
            (self.path / "maildirfolder").touch()

    @property
    def inode(self) -> int:
        return self.path.stat().st_ino

    def messages(self) -> dict[str, MessageFile]:
        """All messages in ``new`` and ``cur`` by key."""
        found: dict[str, MessageFile] = {}
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError), os.scandir(self.path / sub) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    key, flags, _ = split_name(entry.name)
                    found[key] = MessageFile(key, Path(entry.path), flags)
        return found

    def get(self, key: str) -> MessageFile | None:
        for sub in ("cur", "new"):
            with contextlib.suppress(FileNotFoundError), os.scandir(self.path / sub) as entries:
                for entry in entries:
                    if entry.name == key or entry.name.startswith(key + ":"):
                        found_key, flags, _ = split_name(entry.name)
                        return MessageFile(found_key, Path(entry.path), flags)
        return None

    @staticmethod
    def new_key() -> str:
        now = time.time()
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        return (
            f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_counter)}"
            f"R{secrets.token_hex(4)}.{host}"
        )

    def deliver(
        self,
        write: Callable[[IO[bytes]], None] | bytes,
        flags: str = "",
        *,
        mtime: float | None = None,
        key: str | None = None,
        to_new: bool = False,
    ) -> MessageFile:
        """Write a message durably and return it. ``to_new`` puts it in ``new`` (unseen
        mail a reader should announce) without info; otherwise ``cur`` with ``flags``."""
        key = key or self.new_key()
        tmp = self.path / "tmp" / key
        with open(tmp, "wb") as out:
            if isinstance(write, bytes):
                out.write(write)
            else:
                write(out)
            out.flush()
            os.fsync(out.fileno())
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        flags = normalize_flags(flags)
        if to_new and not flags:
            final = self.path / "new" / key
        else:
            final = self.path / "cur" / f"{key}{INFO_SEPARATOR}{flags}"
        os.rename(tmp, final)
        fsync_dir(final.parent)
        return MessageFile(key, final, flags)

    def replace(self, message: MessageFile, write: Callable[[IO[bytes]], None]) -> MessageFile:
        """Replace a message's content atomically, keeping key, flags and folder."""
        tmp = self.path / "tmp" / (message.key + ".replace")
        with open(tmp, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, message.path)
        fsync_dir(message.path.parent)
        return message

    def set_flags(self, message: MessageFile, flags: str) -> MessageFile:
        """Rename to carry ``flags`` (moving from ``new`` to ``cur``); keeps foreign info
        letters (e.g. Dovecot keyword letters)."""
        flags = normalize_flags(flags)
        _, _, other = split_name(message.path.name)
        letters = "".join(sorted(set(flags + other)))
        target = self.path / "cur" / f"{message.key}{INFO_SEPARATOR}{letters}"
        if target != message.path:
            os.rename(message.path, target)
        return MessageFile(message.key, target, flags)

    def remove(self, message: MessageFile) -> None:
        with contextlib.suppress(FileNotFoundError):
            message.path.unlink()

    def clean_tmp(self, older_than: float = 36 * 3600) -> None:
        """Remove files left in tmp by crashed writers (the spec says after 36 hours)."""
        limit = time.time() - older_than
        with contextlib.suppress(FileNotFoundError), os.scandir(self.path / "tmp") as entries:
            for entry in entries:
                if entry.is_file() and entry.stat().st_mtime < limit:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


def _encode_component(name: str) -> str:
    if not name:
        raise InvalidName("empty folder name component")
    return name.replace("%", "%25").replace(".", "%2E").replace("/", "%2F")


_ESCAPES = re.compile(r"%(25|2E|2F)", re.IGNORECASE)


def _decode_percent(name: str) -> str:
    return _ESCAPES.sub(lambda m: chr(int(m.group(1), 16)), name)


class MaildirStore:
    """A tree of Maildir++ folders under one root (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir_name(self, folder: FolderName) -> str:
        """The directory of a folder relative to the root (``""`` for INBOX)."""
        if folder == INBOX:
            return ""
        return "." + ".".join(_encode_component(c) for c in folder)

    def folder_from_dir(self, dir_name: str) -> FolderName:
        if dir_name == "":
            return INBOX
        return tuple(_decode_percent(c) for c in dir_name[1:].split("."))

    def folder(self, name: FolderName) -> Maildir:
        return Maildir(self.root / self.dir_name(name) if name != INBOX else self.root)

    def ensure(self) -> None:
        self.folder(INBOX).create()

    def folders(self) -> dict[FolderName, Maildir]:
        """Every folder present (INBOX always, created if missing)."""
        self.ensure()
        found: dict[FolderName, Maildir] = {INBOX: self.folder(INBOX)}
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith(".") and entry.name not in {".", ".."} and entry.is_dir():
                    box = Maildir(Path(entry.path))
                    if box.exists():
                        found[self.folder_from_dir(entry.name)] = box
        return found

    def create_folder(self, name: FolderName) -> Maildir:
        box = self.folder(name)
        box.create(marker=name != INBOX)
        return box

    def delete_folder(self, name: FolderName) -> None:
        if name == INBOX:
            raise InvalidName("INBOX cannot be deleted")
        shutil.rmtree(self.folder(name).path, ignore_errors=True)

    def rename_folder(self, old: FolderName, new: FolderName) -> Maildir:
        """Rename one folder (children are separate folders in Maildir++: the caller
        renames them too)."""
        target = self.folder(new)
        if target.path.exists():
            raise InvalidName(f"local folder {'/'.join(new)} exists already")
        os.rename(self.folder(old).path, target.path)
        return target

    def walk(self) -> Iterator[tuple[FolderName, MessageFile]]:
        for name, box in sorted(self.folders().items()):
            for message in box.messages().values():
                yield name, message
