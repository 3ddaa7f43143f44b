"""The store: accounts, mailboxes and messages, as a log (see ``api``)."""
