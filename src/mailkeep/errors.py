"""The small error taxonomy shared by every layer.

Store and service code raise these; each protocol maps them once onto its replies
(IMAP ``NO [CODE]``, POP3 ``-ERR [CODE]``, SMTP ``4xx``/``5xx``). Anything else that
escapes a handler is our bug: the protocol answers with a generic failure and logs the
traceback.
"""

from __future__ import annotations


class MailkeepError(Exception):
    """A failure the user or operator caused and can act on; ``str()`` is shown to them."""


class NotFound(MailkeepError):
    """An account, mailbox or message that does not exist (or the caller may not know of)."""


class AlreadyExists(MailkeepError):
    """Creating something whose name is taken."""


class InvalidName(MailkeepError):
    """A mailbox or account name that is malformed or not allowed."""


class QuotaExceeded(MailkeepError):
    """The write would take the account over its storage or message quota (permanent)."""


class PermissionDenied(MailkeepError):
    """The caller lacks the right for this operation (ACL, or a protected mailbox)."""


class InUse(MailkeepError):
    """A resource is locked by another session (e.g. the POP3 maildrop)."""


class Conflict(MailkeepError):
    """A concurrent change made the operation impossible; retrying may succeed."""


class TemporaryFailure(MailkeepError):
    """The store is busy or unavailable, the disk is full: try again later."""


class LimitExceeded(MailkeepError):
    """A configured limit (size, count, nesting) was exceeded by the request."""


class ConfigError(MailkeepError):
    """The configuration or data directory is unusable."""
