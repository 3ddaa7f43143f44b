"""IMAP command handlers, one module per command family; importing this package fills
``base.COMMANDS``. An extension adds its module to the list below."""

from mailkeep.imap.handlers import (
    acl,
    append,
    auth,
    connection,
    copymove,
    fetch,
    idle,
    list,
    mailboxes,
    metadata,
    misc,
    quota,
    replace,
    search,
    select,
    sort,
    status,
    store,
)

__all__ = [
    "acl",
    "append",
    "auth",
    "connection",
    "copymove",
    "fetch",
    "idle",
    "list",
    "mailboxes",
    "metadata",
    "misc",
    "quota",
    "replace",
    "search",
    "select",
    "sort",
    "status",
    "store",
]
