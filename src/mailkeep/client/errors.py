"""Errors of the client tools, each with the exit code the CLI reports for it.

Exit codes (documented in ``mailkeep fetch --help`` and ``mailkeep sync --help``):

====  ==================================================================
0     success (also: nothing to do)
1     unexpected failure (a bug: the traceback is printed)
2     usage error (bad option; from click)
3     configuration error (accounts file, unknown account, password command)
4     authentication failed (the server refused the credentials)
5     TLS failure (handshake, certificate verification, no STARTTLS offered)
6     network failure (cannot connect, connection lost, timeout)
7     protocol error (the server answered something we cannot use, or lacks a
      required capability such as POP3 UIDL)
8     partial success: some folders or messages were skipped (see the output)
9     another fetch/sync of the same account is running (its state is locked)
130   interrupted (Ctrl-C); an interrupted run resumes without duplicates
====  ==================================================================
"""

from __future__ import annotations

from mailkeep.errors import MailkeepError


class ClientError(MailkeepError):
    """A failure of a client tool that the user can act on."""

    exit_code = 1


class ClientConfigError(ClientError):
    exit_code = 3


class AuthenticationFailed(ClientError):
    exit_code = 4


class TlsFailure(ClientError):
    exit_code = 5


class NetworkError(ClientError):
    exit_code = 6


class ProtocolError(ClientError):
    """The server said something we do not understand or cannot work with."""

    exit_code = 7


class PartialFailure(ClientError):
    exit_code = 8


class Busy(ClientError):
    exit_code = 9


class ImapError(ProtocolError):
    """A tagged ``NO`` or ``BAD`` answer (RFC 9051 7.1), with its response code if any."""

    def __init__(self, tag: str, status: str, code: str | None, text: str) -> None:
        self.tag = tag
        self.status = status
        self.code = code
        self.text = text
        shown = f"[{code}] " if code else ""
        super().__init__(f"IMAP {status}: {shown}{text}")


class Pop3Error(ProtocolError):
    """A ``-ERR`` answer (RFC 1939 3), with its RFC 2449 response code if any."""

    def __init__(self, command: str, text: str) -> None:
        self.command = command
        self.text = text
        code_end = text.find("]")
        self.code = text[1:code_end] if text.startswith("[") and code_end > 0 else None
        super().__init__(f"POP3 {command}: -ERR {text}")
