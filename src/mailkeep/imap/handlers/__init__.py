"""IMAP command handlers, one module per command family; importing this package fills
``base.COMMANDS``. An extension adds its module to the list below."""

from mailkeep.imap.handlers import auth, misc

__all__ = ["auth", "misc"]
