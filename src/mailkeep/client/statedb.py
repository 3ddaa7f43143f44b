"""The client tools' state database: one SQLite file per account, beside its Maildir.

It remembers what the last run saw so the next run knows what changed on each side:

- ``pop3``: per UIDL, the Maildir key it was stored under, when it was downloaded (for
  ``--delete-after DAYS``), whether only headers were fetched, whether it was deleted on the
  server.
- ``folders``: per synced IMAP folder, its local directory, the directory's inode (a rename
  keeps it: that is how a local rename is told from delete + create), UIDVALIDITY,
  HIGHESTMODSEQ, UIDNEXT and message count at the end of the last sync.
- ``messages``: per synced message, UID ↔ Maildir key and the flags both sides agreed on at
  the last sync (the base of the three-way flag merge), plus IMAP keywords (Maildir has no
  place for them). ``state`` is ``synced``, or ``downloading``/``appending`` while a transfer
  is in progress, so an interrupted run can finish it without duplicating the message.
"""

from __future__ import annotations

import fcntl
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from mailkeep.client.errors import Busy

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pop3 (
    uidl TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    folder TEXT NOT NULL DEFAULT '',
    downloaded_at REAL NOT NULL,
    size INTEGER,
    headers_only INTEGER NOT NULL DEFAULT 0,
    deleted_on_server INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS folders (
    id INTEGER PRIMARY KEY,
    remote TEXT NOT NULL UNIQUE,
    local TEXT NOT NULL UNIQUE,
    inode INTEGER,
    uidvalidity INTEGER,
    highestmodseq INTEGER,
    uidnext INTEGER,
    messages INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    uid INTEGER,
    flags TEXT NOT NULL DEFAULT '',
    keywords TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'synced',
    hint INTEGER,
    PRIMARY KEY (folder, key)
);
CREATE INDEX IF NOT EXISTS messages_by_uid ON messages(folder, uid);
"""


@dataclass(frozen=True)
class Pop3Row:
    uidl: str
    key: str
    folder: str
    downloaded_at: float
    size: int | None
    headers_only: bool
    deleted_on_server: bool
    pending: bool
    """The download was started under ``key`` but not known to be complete."""


@dataclass(frozen=True)
class FolderRow:
    id: int
    remote: str
    local: str
    inode: int | None
    uidvalidity: int | None
    highestmodseq: int | None
    uidnext: int | None
    messages: int | None


@dataclass(frozen=True)
class MessageRow:
    folder: int
    key: str
    uid: int | None
    flags: str
    keywords: str
    state: str
    hint: int | None
    """For ``appending``: the mailbox's UIDNEXT before the APPEND, to find the copy a
    crash left without APPENDUID."""


class StateDB:
    """Opening it takes an exclusive lock (``PATH.lock``, flock): one fetch or sync per
    account at a time; a second one fails at once with ``Busy``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = open(path.with_name(path.name + ".lock"), "a+b")  # noqa: SIM115
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise Busy(f"another mailkeep run is using {path}") from None
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()
        self._lock.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta ---------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- POP3 -----------------------------------------------------------------------------

    def pop3_rows(self) -> dict[str, Pop3Row]:
        rows = self.db.execute(
            "SELECT uidl, key, folder, downloaded_at, size, headers_only, deleted_on_server,"
            " pending FROM pop3"
        )
        return {
            r[0]: Pop3Row(r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), bool(r[7]))
            for r in rows
        }

    def pop3_pending(self, uidl: str, key: str, downloaded_at: float) -> None:
        """Record the key a download is about to use, so a crash cannot duplicate it."""
        self.db.execute(
            "INSERT INTO pop3(uidl, key, downloaded_at, pending) VALUES (?,?,?,1)"
            " ON CONFLICT(uidl) DO UPDATE SET pending = 1",
            (uidl, key, downloaded_at),
        )

    def pop3_stored(
        self, uidl: str, key: str, downloaded_at: float, size: int | None, headers_only: bool
    ) -> None:
        self.db.execute(
            "INSERT INTO pop3(uidl, key, downloaded_at, size, headers_only) VALUES (?,?,?,?,?)"
            " ON CONFLICT(uidl) DO UPDATE SET key = excluded.key, size = excluded.size,"
            " headers_only = excluded.headers_only, pending = 0,"
            " downloaded_at = excluded.downloaded_at",
            (uidl, key, downloaded_at, size, int(headers_only)),
        )

    def pop3_deleted_on_server(self, uidls: list[str]) -> None:
        self.db.executemany(
            "UPDATE pop3 SET deleted_on_server = 1 WHERE uidl = ?", [(u,) for u in uidls]
        )

    def pop3_forget(self, uidls: list[str]) -> None:
        """Rows for messages gone from the server (by us or anyone): nothing left to do."""
        self.db.executemany("DELETE FROM pop3 WHERE uidl = ?", [(u,) for u in uidls])

    # --- IMAP folders ------------------------------------------------------------------------

    def folders(self) -> list[FolderRow]:
        rows = self.db.execute(
            "SELECT id, remote, local, inode, uidvalidity, highestmodseq, uidnext, messages"
            " FROM folders ORDER BY remote"
        )
        return [FolderRow(*r) for r in rows]

    def add_folder(self, remote: str, local: str, inode: int | None) -> FolderRow:
        cursor = self.db.execute(
            "INSERT INTO folders(remote, local, inode) VALUES (?, ?, ?)", (remote, local, inode)
        )
        assert cursor.lastrowid is not None
        return FolderRow(cursor.lastrowid, remote, local, inode, None, None, None, None)

    def update_folder(self, row: FolderRow) -> None:
        self.db.execute(
            "UPDATE folders SET remote=?, local=?, inode=?, uidvalidity=?, highestmodseq=?,"
            " uidnext=?, messages=? WHERE id=?",
            (
                row.remote,
                row.local,
                row.inode,
                row.uidvalidity,
                row.highestmodseq,
                row.uidnext,
                row.messages,
                row.id,
            ),
        )

    def remove_folder(self, folder_id: int) -> None:
        self.db.execute("DELETE FROM folders WHERE id = ?", (folder_id,))

    # --- IMAP messages ------------------------------------------------------------------------

    def messages(self, folder_id: int) -> dict[str, MessageRow]:
        rows = self.db.execute(
            "SELECT folder, key, uid, flags, keywords, state, hint FROM messages WHERE folder = ?",
            (folder_id,),
        )
        return {r[1]: MessageRow(*r) for r in rows}

    def put_message(self, row: MessageRow) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO messages(folder, key, uid, flags, keywords, state, hint)"
            " VALUES (?,?,?,?,?,?,?)",
            (row.folder, row.key, row.uid, row.flags, row.keywords, row.state, row.hint),
        )

    def put_messages(self, rows: list[MessageRow]) -> None:
        with self.transaction():
            for row in rows:
                self.put_message(row)

    def remove_messages(self, folder_id: int, keys: list[str]) -> None:
        with self.transaction():
            self.db.executemany(
                "DELETE FROM messages WHERE folder = ? AND key = ?",
                [(folder_id, k) for k in keys],
            )

    def clear_messages(self, folder_id: int) -> None:
        self.db.execute("DELETE FROM messages WHERE folder = ?", (folder_id,))

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
