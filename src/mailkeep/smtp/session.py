"""The SMTP / submission / LMTP session as a sans-I/O state machine (h11-style).

One ``Session`` per connection, for all three modes. It takes octets in and hands out
events; the caller answers with ``send(reply)``, which returns the octets to write and is
where the caller's decisions take effect::

    session = Session(Settings(Mode.LMTP, "mx.example"))
    write(session.greeting())
    while not session.closed:
        match session.next_event():
            case NeedData(): session.receive_data(read())           # b"" at EOF
            case Respond(replies): write(b"".join(session.send(r) for r in replies))
            case SenderProposed() | RecipientProposed() as e: write(session.send(decide(e)))
            case AuthStarted() | AuthResponse(): drive SASL; send 334 / 235 / 535 ...
            case TlsRequested(reply): write(session.send(reply)); upgrade the socket
            case MessageReceived(): deliver; send one reply (SMTP) or one per recipient (LMTP)
            case ConnectionClosed(): stop

The machine decides everything that is protocol: sequencing (503), syntax (500/501/555),
line and message size limits, the recipient limit, DATA framing and BDAT chunks, error
and authentication-failure counts. The caller decides only what needs the world: whether
a sender may be used (submission), whether a recipient exists and has room, the SASL
exchange, and delivery. ``send`` must be called for each due reply before the next
``next_event``; events are produced lazily, so a STARTTLS or AUTH takes effect exactly
from the next octet (RFC 2920 section 3.1 pipelining; RFC 3207 section 4.2).

Decisions (the RFCs leave them to the server):

* Command lines may end in bare LF (Postfix's "normalize"); in DATA, lines ending in bare
  LF are stored with CRLF. The end of data is only ``CRLF . CRLF`` (RFC 5321 4.1.1.4):
  ``LF . LF`` and ``CRLF . LF`` are ordinary content, so no SMTP smuggling through us.
* 8-bit data without ``BODY=8BITMIME`` is accepted as is: we are the final destination
  and nothing downstream needs 7 bits; refusing would lose real mail from sloppy senders.
* A message with NUL octets is refused after the data (554 5.6.0): IMAP cannot carry NUL
  in a literal (RFC 9051 4.3) and no conforming sender produces one.
* A message over ``max_message`` is read to its end and discarded, then refused with
  552 5.3.4 (RFC 1870 section 6.3); declared ``SIZE=`` over the limit is refused at MAIL.
* At most ``max_recipients`` (100, the minimum RFC 5321 4.5.3.1.8 allows) per
  transaction; further RCPT get 452 4.5.3 and the client sends them in another one.
* ``max_errors`` (20) failed commands end the session with 421 4.7.0, as does
  ``max_auth_failures`` (3) failed AUTH; rejected recipients count as errors in SMTP and
  submission (directory harvesting) but not in LMTP (our own MTA, reusing connections);
  delivery outcomes after DATA never count.
* LMTP refuses HELO/EHLO and SMTP refuses LHLO with 500 5.5.1; DATA without a valid
  recipient is 503 5.5.1 in LMTP (RFC 2033 4.2) and 554 5.5.1 in SMTP (RFC 5321 3.3).
* Submission requires AUTH before MAIL (530 5.7.0, RFC 4954 section 6). AUTH is never
  offered on the SMTP (MX) or LMTP listeners. Without TLS, AUTH is advertised only when
  plain-text passwords are allowed there (loopback by default); otherwise AUTH gets
  530 5.7.0 "Must issue a STARTTLS command first" (RFC 3207 section 4), or 538 5.7.11
  when there is no certificate to start TLS with.
* STARTTLS is refused during a transaction (503 5.5.1); after it every piece of state is
  forgotten, pipelined clear-text octets are dropped (RFC 3207 section 4.2).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailkeep.auth.sasl import (
    Failure,
    FailureCode,
    SaslEncodingError,
    decode_initial_response,
    decode_response,
)
from mailkeep.smtp.commands import (
    Auth,
    Bdat,
    Command,
    CommandError,
    Data,
    Ehlo,
    Helo,
    Help,
    Lhlo,
    Mail,
    MailParams,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    StartTls,
    Vrfy,
    parse_command,
    reply,
)
from mailkeep.smtp.delivery import Outcome, Status

MB = 1024 * 1024


class Mode(enum.Enum):
    SMTP = "smtp"
    """MX: mail for our own users from anyone; no AUTH."""
    SUBMISSION = "submission"
    """RFC 6409: authenticated users; ports 587 (STARTTLS) and 465 (implicit TLS)."""
    LMTP = "lmtp"
    """RFC 2033: from a trusted MTA; one reply per recipient after the data."""


@dataclass(frozen=True, slots=True)
class Settings:
    mode: Mode
    hostname: str
    max_line: int = 64 * 1024
    """Longest command line, CRLF included (RFC 5321 4.5.3.1.4 asks for at least 512)."""
    max_message: int = 50 * MB
    max_recipients: int = 100
    max_errors: int = 20
    max_auth_failures: int = 3
    tls: bool = False
    """The connection is already encrypted (implicit TLS, port 465)."""
    starttls: bool = False
    """STARTTLS can be offered (a certificate is configured)."""
    auth_clear: tuple[str, ...] = ()
    """SASL mechanisms offered without TLS (submission only)."""
    auth_tls: tuple[str, ...] = ()
    """SASL mechanisms offered under TLS (submission only)."""


# ------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class NeedData:
    pass


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed its side (or the session ended); ``reason`` is for the log."""

    reason: str


@dataclass(frozen=True, slots=True)
class Respond:
    """The machine's own answer: ``send`` each reply in order."""

    replies: tuple[Reply, ...]


@dataclass(frozen=True, slots=True)
class SenderProposed:
    """MAIL FROM passed the protocol checks: answer 250 (``sender_ok``) or refuse."""

    address: str
    params: MailParams


@dataclass(frozen=True, slots=True)
class RecipientProposed:
    """RCPT TO passed the protocol checks: answer with ``recipient_reply``."""

    address: str
    size: int | None
    """The transaction's declared ``SIZE=``, for a quota check at RCPT time."""


@dataclass(frozen=True, slots=True)
class AuthStarted:
    """AUTH with a mechanism we offer: start the SASL exchange; answer 334 (challenge),
    235 or a failure (``auth_failure_reply``)."""

    mechanism: str
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """The client's answer to a 334 challenge; None when it cancelled with ``*``."""

    data: bytes | None


@dataclass(frozen=True, slots=True)
class TlsRequested:
    """STARTTLS accepted: send ``reply`` (220), then start the TLS handshake."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A complete message: deliver it, then send ``replies_due`` replies (one for SMTP and
    submission, one per recipient in order for LMTP; ``delivery_replies`` makes them)."""

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    params: MailParams
    eight_bit: bool
    replies_due: int


Event = (
    NeedData
    | ConnectionClosed
    | Respond
    | SenderProposed
    | RecipientProposed
    | AuthStarted
    | AuthResponse
    | TlsRequested
    | MessageReceived
)

# ------------------------------------------------------------------------------- replies

OK = reply(250, "2.0.0", "OK")
SENDER_OK = reply(250, "2.1.0", "sender OK")
START_DATA = reply(354, "", "End data with <CR><LF>.<CR><LF>")
AUTH_SUCCEEDED = reply(235, "2.7.0", "Authentication successful")
TLS_READY = reply(220, "2.0.0", "Ready to start TLS")
LINE_TOO_LONG = reply(500, "5.5.6", "line too long")
TEMPORARY_FAILURE = reply(451, "4.3.0", "temporary failure; please try again later")


def sender_ok() -> Reply:
    return SENDER_OK


def recipient_reply(status: Status, address: str, mode: Mode) -> Reply:
    """RCPT answer for what delivery's RCPT-time check said about ``address``."""
    match status:
        case Status.DELIVERED:
            return reply(250, "2.1.5", f"<{address}> OK")
        case Status.NOT_OURS if mode is Mode.SUBMISSION:
            return reply(
                550,
                "5.7.1",
                f"<{address}>: mailkeep has no outgoing mail queue yet and delivers only to"
                " its own users; send mail for other domains through your provider's server",
            )
        case Status.NOT_OURS:
            return reply(
                550, "5.7.1", f"<{address}>: relay access denied; we accept mail only for our users"
            )
        case _:
            return delivery_reply(Outcome(address, status))


def delivery_reply(outcome: Outcome) -> Reply:
    """The reply for one recipient after the data (LMTP gives one per recipient)."""
    address = outcome.recipient
    match outcome.status:
        case Status.DELIVERED:
            return reply(250, "2.0.0", f"<{address}> delivered, id {outcome.detail}")
        case Status.UNKNOWN_USER:
            return reply(550, "5.1.1", f"<{address}>: no such user here")
        case Status.NOT_OURS:
            return reply(550, "5.7.1", f"<{address}>: relay access denied")
        case Status.OVER_QUOTA:
            return reply(452, "4.2.2", f"<{address}>: mailbox full (over quota); try again later")
        case Status.TOO_BIG:
            return reply(552, "5.2.2", f"<{address}>: message larger than the mailbox quota")
        case Status.TEMPORARY:
            return reply(
                451, "4.3.0", f"<{address}>: temporary failure in delivery; try again later"
            )


def delivery_replies(mode: Mode, outcomes: Sequence[Outcome]) -> list[Reply]:
    """The replies due after the data: one per recipient (LMTP, RFC 2033 4.2), or one
    for the whole message (SMTP, submission).

    SMTP can answer only once per message. Outcomes are usually uniform because quota
    and existence are checked at RCPT time; when they are not (a race), a temporary
    failure wins (the sender retries and the recipients that already have the message
    may get it twice: RFC 5321 6.1 prefers a duplicate to a loss), else a permanent one
    (the sender is told, though some recipients have it), else 250.
    """
    if mode is Mode.LMTP:
        return [delivery_reply(o) for o in outcomes]
    failed = [o for o in outcomes if not o.delivered]
    if not failed:
        ids = sorted({o.detail for o in outcomes})
        return [reply(250, "2.0.0", f"OK, delivered to {len(outcomes)}, id {' '.join(ids)}")]
    temporary = [o for o in failed if not o.permanent]
    return [delivery_reply(temporary[0] if temporary else failed[0])]


def auth_failure_reply(failure: Failure) -> Reply:
    """RFC 4954 section 6 codes for a failed SASL exchange."""
    match failure.code:
        case FailureCode.AUTHENTICATION_FAILED | FailureCode.AUTHORIZATION_FAILED:
            return reply(535, "5.7.8", "Authentication credentials invalid")
        case FailureCode.CANCELLED:
            return reply(501, "5.0.0", "Authentication cancelled")
        case FailureCode.MALFORMED:
            return reply(501, "5.5.2", failure.reason)
        case FailureCode.UNKNOWN_MECHANISM:
            return reply(504, "5.5.4", failure.reason)
        case FailureCode.ENCRYPTION_REQUIRED:
            return reply(
                538, "5.7.11", "Encryption required for requested authentication mechanism"
            )
        case FailureCode.UNAVAILABLE:
            return reply(454, "4.7.0", "Temporary authentication failure")


# ------------------------------------------------------------------------------- state


class Phase(enum.Enum):
    """Where the client is in the RFC 5321 4.1.4 command sequence."""

    INITIAL = "initial"
    """No EHLO/HELO/LHLO yet."""
    READY = "ready"
    MAIL = "mail"
    """MAIL accepted, no recipient yet."""
    RCPT = "rcpt"
    """At least one recipient accepted."""


ANY = frozenset(Phase)
GREETED = frozenset({Phase.READY, Phase.MAIL, Phase.RCPT})

# The state machine as data: the phases each command is accepted in.
ALLOWED: dict[type[Command], frozenset[Phase]] = {
    Helo: ANY,
    Ehlo: ANY,
    Lhlo: ANY,
    Rset: ANY,
    Noop: ANY,
    Quit: ANY,
    Vrfy: ANY,
    Help: ANY,
    StartTls: frozenset({Phase.READY}),
    Auth: frozenset({Phase.READY}),
    Mail: frozenset({Phase.READY}),
    Rcpt: frozenset({Phase.MAIL, Phase.RCPT}),
    Data: frozenset({Phase.RCPT}),
    Bdat: frozenset({Phase.RCPT}),
}


class _Input(enum.Enum):
    COMMAND = "command"
    AUTH = "auth"
    """The next line answers a 334 challenge."""
    SKIP_LINE = "skip-line"
    """Discarding the rest of a line that was too long."""
    DATA = "data"
    BDAT = "bdat"


class _Due(enum.Enum):
    """What the replies now due answer; ``send`` applies the outcome."""

    NOTHING = "nothing"
    COMMAND = "command"
    SENDER = "sender"
    RECIPIENT = "recipient"
    AUTH = "auth"
    TLS = "tls"
    MESSAGE = "message"


@dataclass
class _Transaction:
    mail_from: str
    params: MailParams
    recipients: list[str] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    too_big: bool = False
    nul: bool = False
    eight_bit: bool = False
    bdat: bool = False


def _crlf(data: bytes) -> bytes:
    """Every bare LF becomes CRLF; CRLF and lone CR stay as they are."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Session:
    """One connection's protocol state. Not thread-safe; performs no I/O."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode = settings.mode
        self.tls = settings.tls
        self.helo = ""
        """The client's EHLO/HELO/LHLO name, for Received."""
        self.esmtp = False
        self.authenticated = False
        self.closed = False
        self.ended = ""
        """Why the session ended, for the log."""
        self.errors = 0
        self.auth_failures = 0
        self._greeted = False
        self._buffer = bytearray()
        self._eof = False
        self._input = _Input.COMMAND
        self._tx: _Transaction | None = None
        self._due = _Due.NOTHING
        self._owed = 0
        self._proposed = ""
        self._proposed_sender = ""
        self._proposed_params = MailParams()
        # DATA framing: at the start of a line, and whether the last line ended in CRLF.
        self._line_start = True
        self._after_crlf = True
        # BDAT: octets of the current chunk still to read, its LAST flag, and the reply
        # to give instead of accepting it (a sequence error: its octets are still read).
        self._bdat_remaining = 0
        self._bdat_last = False
        self._bdat_size = 0
        self._bdat_refusal: Reply | None = None

    # ---------------------------------------------------------------- properties

    @property
    def phase(self) -> Phase:
        if not self._greeted:
            return Phase.INITIAL
        if self._tx is None:
            return Phase.READY
        return Phase.RCPT if self._tx.recipients else Phase.MAIL

    @property
    def protocol(self) -> str:
        """RFC 3848 ``with`` keyword for Received: ESMTP, ESMTPS, ESMTPSA, LMTP, ..."""
        if self.mode is Mode.LMTP:
            base = "LMTP"
        elif self.esmtp:
            base = "ESMTP"
        else:
            return "SMTP"
        return base + ("S" if self.tls else "") + ("A" if self.authenticated else "")

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    @property
    def receiving_message(self) -> bool:
        """Reading message data (DATA or a BDAT chunk) rather than a command line."""
        return self._input in (_Input.DATA, _Input.BDAT)

    def mechanisms(self) -> tuple[str, ...]:
        """SASL mechanisms offered now."""
        if self.mode is not Mode.SUBMISSION:
            return ()
        return self.settings.auth_tls if self.tls else self.settings.auth_clear

    # ---------------------------------------------------------------- output

    def greeting(self) -> bytes:
        """RFC 5321 4.3.1 / RFC 2033 4.1: the 220 banner."""
        kind = "LMTP" if self.mode is Mode.LMTP else "ESMTP"
        return reply(220, "", f"{self.settings.hostname} {kind} mailkeep").encode()

    def send(self, answer: Reply) -> bytes:
        """Octets for one due reply; applies its outcome to the state. May append a 421
        and close the session (too many errors or failed AUTH)."""
        if self.closed:
            return b""
        if self._owed <= 0:
            raise RuntimeError("no reply is due")
        self._owed -= 1
        due = self._due
        if self._owed == 0:
            self._due = _Due.NOTHING
        self._apply(due, answer)
        out = answer.encode()
        if answer.closes:
            self._close("QUIT" if answer.code == 221 else f"closed: {answer.lines[0]}")
            return out
        if answer.code >= 400 and self._counts_as_error(due):
            self.errors += 1
        if self.auth_failures >= self.settings.max_auth_failures:
            return out + self.shutdown(reply(421, "4.7.0", "too many failed logins; closing"))
        if self.errors >= self.settings.max_errors:
            return out + self.shutdown(reply(421, "4.7.0", "too many errors; closing"))
        return out

    def _counts_as_error(self, due: _Due) -> bool:
        """Delivery outcomes never count; refused recipients count except in LMTP, whose
        client is our own MTA reusing one connection for many deliveries."""
        if due is _Due.MESSAGE:
            return False
        return not (due is _Due.RECIPIENT and self.mode is Mode.LMTP)

    def _apply(self, due: _Due, answer: Reply) -> None:
        match due:
            case _Due.SENDER if answer.positive:
                self._tx = _Transaction(self._proposed_sender, self._proposed_params)
            case _Due.RECIPIENT if answer.positive and self._tx is not None:
                self._tx.recipients.append(self._proposed)
            case _Due.AUTH:
                if answer.code == 334:
                    self._input = _Input.AUTH
                elif answer.code == 235:
                    self.authenticated = True
                elif answer.code == 535:
                    self.auth_failures += 1
            case _Due.TLS if answer.code == 220:
                # RFC 3207 section 4.2: forget everything learnt in clear text, including
                # octets the client pipelined after STARTTLS.
                self.tls = True
                self._buffer.clear()
                self._greeted = False
                self.helo = ""
                self.esmtp = False
                self.authenticated = False
                self._tx = None
            case _Due.MESSAGE if self._owed == 0:
                self._tx = None  # RFC 5321 4.1.1.4: the transaction ends with the data
            case _:
                pass

    def timeout(self) -> bytes:
        """The client was silent too long (RFC 5321 4.5.3.2): 421 and close."""
        return self.shutdown(reply(421, "4.4.2", f"{self.settings.hostname} timeout; closing"))

    def shutdown(self, answer: Reply) -> bytes:
        """End the session now with ``answer`` (a 421), whatever is due."""
        if self.closed:
            return b""
        self._close(f"closed: {answer.lines[0]}")
        return answer.encode()

    def _close(self, why: str) -> None:
        self.closed = True
        self.ended = why
        self._owed = 0
        self._due = _Due.NOTHING
        self._tx = None
        self._buffer.clear()

    # ---------------------------------------------------------------- input

    def receive_data(self, data: bytes) -> None:
        """Octets from the client; ``b""`` when it closed its side."""
        if not data:
            self._eof = True
        elif not self.closed:
            self._buffer += data

    def next_event(self) -> Event:
        """The next event; ``NeedData`` when more input is needed. Never raises on input."""
        if self._owed > 0:
            raise RuntimeError("send the replies that are due first")
        if self.closed:
            return ConnectionClosed(self.ended)
        match self._input:
            case _Input.DATA:
                event = self._data()
            case _Input.BDAT:
                event = self._bdat_data()
            case _:
                event = self._line()
        if isinstance(event, NeedData) and self._eof:
            reading = self._input in (_Input.DATA, _Input.BDAT)
            during = " during the message data (discarded)" if reading else ""
            self._close(f"client closed the connection{during}")
            return ConnectionClosed(self.ended)
        return event

    def _respond(self, *replies: Reply, due: _Due = _Due.COMMAND) -> Respond:
        self._owed = len(replies)
        self._due = due
        return Respond(replies)

    def _line(self) -> Event:
        limit = self.settings.max_line
        end = self._buffer.find(b"\n", 0, limit)
        if end < 0:
            if len(self._buffer) < limit:
                return NeedData()
            skipping = self._input is _Input.SKIP_LINE
            end = self._buffer.find(b"\n", limit)
            if end < 0:
                self._buffer.clear()
                self._input = _Input.SKIP_LINE
            else:
                del self._buffer[: end + 1]
                self._input = _Input.COMMAND
            if skipping:  # the too-long line was answered already
                return NeedData() if end < 0 else self._line()
            return self._respond(LINE_TOO_LONG)  # RFC 5321 4.5.3.1.4
        line = bytes(self._buffer[:end]).removesuffix(b"\r")
        del self._buffer[: end + 1]
        mode, self._input = self._input, _Input.COMMAND
        if mode is _Input.SKIP_LINE:
            return self._line()
        if mode is _Input.AUTH:
            return self._auth_line(line)
        try:
            command = parse_command(line)
        except CommandError as exc:
            return self._respond(exc.reply)
        return self._command(command)

    # ---------------------------------------------------------------- commands

    def _command(self, command: Command) -> Event:
        refused = self._mode_refusal(command)
        if refused is None and self.phase not in ALLOWED[type(command)]:
            refused = self._out_of_sequence(command)
        if refused is not None:
            if isinstance(command, Bdat):
                return self._start_chunk(command, refused)
            return self._respond(refused)
        match command:
            case Helo(domain) | Ehlo(domain) | Lhlo(domain):
                return self._hello(command, domain)
            case Mail(address, params):
                return self._mail(address, params)
            case Rcpt(address):
                return self._rcpt(address)
            case Data() if self._tx is not None and self._tx.bdat:
                return self._respond(reply(503, "5.5.1", "DATA after BDAT: send BDAT LAST"))
            case Data():
                self._input = _Input.DATA
                self._line_start = self._after_crlf = True
                return self._respond(START_DATA)
            case Bdat():
                return self._start_chunk(command, None)
            case Rset():
                self._tx = None
                return self._respond(OK)
            case Noop():
                return self._respond(OK)
            case Quit():
                return self._respond(reply(221, "2.0.0", f"{self.settings.hostname} closing"))
            case Vrfy():
                # RFC 5321 3.5.3: we do not say who exists (directory harvesting).
                return self._respond(
                    reply(252, "2.5.0", "cannot VRFY user, but will accept the message")
                )
            case Help():
                return self._respond(self._help())
            case StartTls():
                return self._starttls()
            case Auth(mechanism, initial):
                return self._auth(mechanism, initial)
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    def _mode_refusal(self, command: Command) -> Reply | None:
        match command:
            case Helo() | Ehlo() if self.mode is Mode.LMTP:
                return reply(500, "5.5.1", "this is LMTP: say LHLO (RFC 2033)")
            case Lhlo() if self.mode is not Mode.LMTP:
                return reply(500, "5.5.1", "this is SMTP, not LMTP: say EHLO or HELO")
            case Auth() if self.mode is not Mode.SUBMISSION:
                return reply(502, "5.5.1", "AUTH is not available here; use the submission port")
        return None

    def _out_of_sequence(self, command: Command) -> Reply:
        phase = self.phase
        hello = "LHLO" if self.mode is Mode.LMTP else "EHLO"
        match command:
            case _ if phase is Phase.INITIAL:
                text = f"send {hello} first"
            case Rcpt():
                text = "need MAIL before RCPT"
            case Data() | Bdat() if phase is Phase.MAIL:
                if self.mode is Mode.LMTP:
                    return reply(503, "5.5.1", "no valid recipients")
                return reply(554, "5.5.1", "no valid recipients")
            case Data() | Bdat():
                text = "need MAIL and RCPT before the message"
            case Mail():
                text = "nested MAIL command: RSET first"
            case _:
                text = "not permitted during a mail transaction"
        return reply(503, "5.5.1", text)

    def _hello(self, command: Helo | Ehlo | Lhlo, domain: str) -> Respond:
        # RFC 5321 4.1.4: EHLO/HELO reset the transaction (RFC 2033 4.1: LHLO likewise).
        self._tx = None
        self._greeted = True
        self.helo = domain
        self.esmtp = not isinstance(command, Helo)
        name = self.settings.hostname
        if isinstance(command, Helo):
            return self._respond(reply(250, "", name))
        lines = [
            name,
            "PIPELINING",  # RFC 2920
            f"SIZE {self.settings.max_message}",  # RFC 1870
            "8BITMIME",  # RFC 6152
            "SMTPUTF8",  # RFC 6531
            "ENHANCEDSTATUSCODES",  # RFC 2034
            "CHUNKING",  # RFC 3030
        ]
        if self.settings.starttls and not self.tls:
            lines.append("STARTTLS")  # RFC 3207
        if self.mechanisms():
            lines.append("AUTH " + " ".join(self.mechanisms()))  # RFC 4954
        lines.append("HELP")
        return self._respond(reply(250, "", *lines))

    def _help(self) -> Reply:
        hello = "LHLO" if self.mode is Mode.LMTP else "EHLO HELO"
        extra = " AUTH" if self.mode is Mode.SUBMISSION else ""
        return reply(
            214,
            "2.0.0",
            f"commands: {hello} MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS" + extra,
            "see RFC 5321" + (" and RFC 2033" if self.mode is Mode.LMTP else ""),
        )

    def _mail(self, address: str, params: MailParams) -> Respond | SenderProposed:
        if self.mode is Mode.SUBMISSION and not self.authenticated:
            return self._respond(reply(530, "5.7.0", "Authentication required"))
        if params.size is not None and params.size > self.settings.max_message:
            return self._respond(self._too_big())
        if not address.isascii() and not params.smtputf8:
            return self._respond(_needs_smtputf8(address))
        self._proposed_sender = address
        self._proposed_params = params
        self._owed, self._due = 1, _Due.SENDER
        return SenderProposed(address, params)

    def _rcpt(self, address: str) -> Respond | RecipientProposed:
        tx = self._tx
        assert tx is not None
        if len(tx.recipients) >= self.settings.max_recipients:
            return self._respond(reply(452, "4.5.3", "too many recipients"))
        if not address.isascii() and not tx.params.smtputf8:
            return self._respond(_needs_smtputf8(address))
        self._proposed = address
        self._owed, self._due = 1, _Due.RECIPIENT
        return RecipientProposed(address, tx.params.size)

    def _too_big(self) -> Reply:
        limit = self.settings.max_message
        return reply(552, "5.3.4", f"message size exceeds the limit of {limit} octets")

    def _starttls(self) -> Respond | TlsRequested:
        if self.tls:
            return self._respond(reply(503, "5.5.1", "TLS is already active"))
        if not self.settings.starttls:
            return self._respond(reply(454, "4.7.0", "TLS not available"))
        self._owed, self._due = 1, _Due.TLS
        return TlsRequested(TLS_READY)

    def _auth(self, mechanism: str, initial: str | None) -> Respond | AuthStarted:
        if self.authenticated:
            return self._respond(reply(503, "5.5.1", "already authenticated"))
        offered = self.mechanisms()
        if not offered:
            if not self.tls and self.settings.auth_tls and self.settings.starttls:
                return self._respond(reply(530, "5.7.0", "Must issue a STARTTLS command first"))
            if not self.tls and self.settings.auth_tls:
                text = "passwords need TLS, and this server has no certificate for STARTTLS"
                return self._respond(reply(538, "5.7.11", text))
            return self._respond(reply(502, "5.5.1", "AUTH is not available"))
        if mechanism not in offered:
            return self._respond(
                reply(504, "5.5.4", f"unrecognized authentication type; use {' '.join(offered)}")
            )
        data: bytes | None = None
        if initial is not None:
            try:
                data = decode_initial_response(initial.encode())
            except SaslEncodingError:
                return self._respond(reply(501, "5.5.2", "cannot decode the initial response"))
        self._owed, self._due = 1, _Due.AUTH
        return AuthStarted(mechanism, data)

    def _auth_line(self, line: bytes) -> Respond | AuthResponse:
        """RFC 4954 section 4: a base64 response, or ``*`` to cancel."""
        try:
            data = decode_response(line)
        except SaslEncodingError:
            return self._respond(reply(501, "5.5.2", "cannot decode the response"))
        self._owed, self._due = 1, _Due.AUTH
        return AuthResponse(data)

    # ---------------------------------------------------------------- message data

    def _data(self) -> Event:
        """RFC 5321 4.1.1.4 and 4.5.2: lines up to ``CRLF . CRLF``, dots unstuffed."""
        buf = self._buffer
        while buf:
            if self._line_start and buf[0] == 0x2E:  # "."
                if len(buf) < 3 and buf[1:2] != b"\n":
                    return NeedData()
                if buf[:3] == b".\r\n" and self._after_crlf:
                    del buf[:3]
                    self._input = _Input.COMMAND
                    return self._message_complete()
                del buf[:1]  # transparency: the first of a line's leading dots goes
                self._line_start = False
            # Take whole lines up to the end of data (or the last line end we have) at
            # once, unstuffing every line inside them in one pass; the line after the
            # last line end is looked at above when its first octets are there.
            finish = buf.find(b"\r\n.\r\n")
            end = finish + 2 if finish >= 0 else buf.rfind(b"\n") + 1
            if end > 0:
                self._after_crlf = end >= 2 and buf[end - 2 : end] == b"\r\n"
                self._line_start = True
            else:
                end = len(buf) - (1 if buf.endswith(b"\r") else 0)  # CR may start a CRLF
                if end == 0:
                    return NeedData()
                self._line_start = False
            piece = bytes(buf[:end])
            del buf[:end]
            if b"\n." in piece:
                piece = piece.replace(b"\n.", b"\n")
            if b"\n" in piece and piece.count(b"\n") != piece.count(b"\r\n"):
                piece = _crlf(piece)
            self._take(piece)
        return NeedData()

    def _take(self, piece: bytes) -> None:
        tx = self._tx
        assert tx is not None
        tx.size += len(piece)
        if tx.size > self.settings.max_message:
            if not tx.too_big:
                tx.too_big = True
                tx.chunks.clear()  # read on, keep nothing (RFC 1870 section 6.3)
            return
        tx.chunks.append(piece)
        if not tx.nul and b"\x00" in piece:
            tx.nul = True
        if not tx.eight_bit and not piece.isascii():
            tx.eight_bit = True

    def _start_chunk(self, command: Bdat, refusal: Reply | None) -> Event:
        """RFC 3030 section 2: the chunk's octets follow the BDAT line whatever the answer,
        so they are read (and dropped when the command is refused) before answering."""
        self._bdat_remaining = command.size
        self._bdat_size = command.size
        self._bdat_last = command.last
        self._bdat_refusal = refusal
        if refusal is None:
            assert self._tx is not None
            self._tx.bdat = True
        self._input = _Input.BDAT
        return self._bdat_data()

    def _bdat_data(self) -> Event:
        buf = self._buffer
        if self._bdat_remaining:
            count = min(len(buf), self._bdat_remaining)
            if count:
                piece = bytes(buf[:count])
                del buf[:count]
                self._bdat_remaining -= count
                if self._bdat_refusal is None:
                    self._take(piece)
            if self._bdat_remaining:
                return NeedData()
        self._input = _Input.COMMAND
        if self._bdat_refusal is not None:
            return self._respond(self._bdat_refusal)
        tx = self._tx
        assert tx is not None
        if self._bdat_last:
            return self._message_complete()
        if tx.too_big:
            self._tx = None  # RFC 3030 section 2: a failed chunk ends the transaction
            return self._respond(self._too_big())
        return self._respond(reply(250, "2.0.0", f"{self._bdat_size} octets received"))

    def _message_complete(self) -> Event:
        tx = self._tx
        assert tx is not None
        due = len(tx.recipients) if self.mode is Mode.LMTP else 1
        if tx.too_big:
            return self._respond(*[self._too_big()] * due, due=_Due.MESSAGE)
        if tx.nul:
            refusal = reply(554, "5.6.0", "message contains NUL octets, which mail may not carry")
            return self._respond(*[refusal] * due, due=_Due.MESSAGE)
        data = b"".join(tx.chunks)
        tx.chunks.clear()
        if tx.bdat and b"\n" in data and data.count(b"\n") != data.count(b"\r\n"):
            data = _crlf(data)
        self._owed, self._due = due, _Due.MESSAGE
        return MessageReceived(
            tx.mail_from, tuple(tx.recipients), data, tx.params, tx.eight_bit, due
        )


def _needs_smtputf8(address: str) -> Reply:
    # RFC 6531 section 3.5: non-ASCII addresses only in an SMTPUTF8 transaction.
    return reply(553, "5.6.7", f"<{address}>: non-ASCII address needs MAIL FROM ... SMTPUTF8")
