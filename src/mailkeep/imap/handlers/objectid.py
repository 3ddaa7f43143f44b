"""OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID.

* MAILBOXID is derived from the mailbox's row id, which RENAME keeps and DELETE ends: a
  mailbox deleted and created again under the same name gets a new id (RFC 8474 4.1).
* EMAILID names the stored content (``store.sql.email_id``), so COPY and MOVE keep it
  (RFC 8474 5.1); THREADID is the store's thread (``store.sql.thread_id``).

The FETCH items live in ``fetch.ATTRIBUTES``; STATUS MAILBOXID is registered here, in
``status.STATUS_ITEMS``.
"""

from __future__ import annotations

from mailkeep.imap.handlers import status
from mailkeep.store.api import Mailbox


def mailbox_id(mailbox: Mailbox) -> str:
    """``objectid = 1*255(ALPHA / DIGIT / "_" / "-")`` (RFC 8474 4)."""
    return f"F{mailbox.id:x}"


async def _mailboxid(ctx: status.StatusContext) -> str:
    return mailbox_id(ctx.mailbox)


status.STATUS_ITEMS["MAILBOXID"] = _mailboxid
