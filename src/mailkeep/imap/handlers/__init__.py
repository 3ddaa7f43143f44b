"""IMAP command handlers, one module per command family; importing this package fills
``base.COMMANDS``. An extension adds its module to the list below."""

from mailkeep.imap.handlers import append, auth, fetch, list, mailboxes, misc, select, status

__all__ = ["append", "auth", "fetch", "list", "mailboxes", "misc", "select", "status"]
