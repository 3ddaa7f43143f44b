"""mailkeep: a mail server that keeps mail on the server (IMAP, POP3, SMTP/LMTP)."""

__version__ = "0.1.0"
