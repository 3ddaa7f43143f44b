"""APPEND with MULTIAPPEND (RFC 9051 6.3.12, RFC 3502), binary literals (RFC 3516), the
UTF8 data item (RFC 6855) and APPENDUID (RFC 4315).

Every message of one command is parsed once (by the server's ``Parser``: in a worker
process, or in place) and appended in one transaction: all or none (RFC 3502 6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import access, responses
from mailkeep.imap import commands as c
from mailkeep.imap.handlers.base import AUTHENTICATED, Result, bad, handles, no
from mailkeep.imap.handlers.common import client_flags
from mailkeep.store.api import AppendResult, NewMessage

if TYPE_CHECKING:
    from mailkeep.imap.session import Session


@handles(c.Append, AUTHENTICATED)
async def append(session: Session, tag: str, command: c.Append) -> Result:
    mailbox_id, messages = await prepare(session, command)
    return completed(await session.store.append(mailbox_id, messages))


async def prepare(session: Session, command: c.Append) -> tuple[int, list[NewMessage]]:
    """The target mailbox and the parsed messages: everything before the store."""
    name = session.mailbox_name(command.mailbox)
    # RFC 4314 4: APPEND needs "i"; flags the user may not set are dropped, not refused.
    # RFC 9051 6.3.12: TRYCREATE tells the client that CREATE may help.
    found = await access.open_mailbox(session, name, "i", code=responses.TRYCREATE)
    mailbox = found.mailbox
    allowed, keywords_allowed = access.flag_rights(found.rights)
    messages: list[NewMessage] = []
    for item in command.messages:
        if not item.data:
            raise no("an empty message cannot be appended", responses.CANNOT)
        if not item.binary and b"\0" in item.data:
            raise bad("a literal cannot contain NUL; send binary data as ~{n} (RFC 3516)")
        flags, keywords = client_flags(item.flags)
        flags &= allowed
        keywords = keywords if keywords_allowed else ()
        parsed = await session.services.message_parser.parse(item.data)
        messages.append(NewMessage(item.data, parsed, flags, keywords, item.internal_date))
    return mailbox.id, messages


def completed(result: AppendResult) -> Result:
    code = responses.appenduid(result.mailbox.uidvalidity, result.uids)
    return Result("OK", "APPEND completed", code)
