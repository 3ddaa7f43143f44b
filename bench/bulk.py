"""The documented bulk path for very large mailboxes (the 1,000,000-message one): the corpus is
written once as a Maildir (``cur/``, one file per message, mtime = the message's Date), cached
under ``bench/results/tmp/`` for later runs, then

- Dovecot: the files are hard-linked into the bench user's Maildir ``cur/``; Dovecot indexes
  them at the next SELECT (done before measuring, by the checks or the warm-up run);
- mailkeep: ``mailkeep --data DIR import maildir PATH --to ADDRESS`` with the server stopped
  (batched appends through the store API: the same parse-once path as delivery, without a
  network round trip per message).

Streaming LMTP (``bench.workloads.delivery.load``) remains the path for every other size and
the fallback for a server without a bulk path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.corpus import Corpus


def maildir_name(corpus: Corpus, i: int, size: int) -> str:
    """``cur/`` file name: unique, sortable by index, with Dovecot's S= size hint; no flags."""
    return f"{i:09d}.bench{corpus.spec.seed},S={size}:2,"


def write_maildir(corpus: Corpus, root: Path, progress: bool = False) -> Path:
    """The corpus as a Maildir under ``root`` (reused when a complete one is already there)."""
    spec = corpus.spec
    directory = root / f"maildir-{spec.size}-{spec.seed}-{spec.attachment_rate}"
    done = directory / ".complete"
    if done.exists():
        return directory
    if directory.exists():
        shutil.rmtree(directory)
    for sub in ("cur", "new", "tmp"):
        (directory / sub).mkdir(parents=True)
    cur = directory / "cur"
    for i in range(spec.size):
        message = corpus.message(i)
        path = cur / maildir_name(corpus, i, len(message))
        path.write_bytes(message)
        when, _ = corpus.date(i)
        os.utime(path, (when, when))
        if progress and (i + 1) % 100_000 == 0:
            print(f"  maildir: {i + 1:,}/{spec.size:,} written", flush=True)
    done.touch()
    return directory


def link_into(source: Path, target: Path, uid: int, gid: int) -> int:
    """Hard-link every ``cur/`` file of ``source`` into the Maildir ``target`` (created, owned by
    ``uid:gid``). Returns the number of files linked."""
    for sub in ("cur", "new", "tmp"):
        (target / sub).mkdir(parents=True, exist_ok=True)
        os.chown(target / sub, uid, gid)
    os.chown(target, uid, gid)
    count = 0
    with os.scandir(source / "cur") as entries:
        for entry in entries:
            destination = target / "cur" / entry.name
            os.link(entry.path, destination)
            os.chown(destination, uid, gid)
            count += 1
    return count
