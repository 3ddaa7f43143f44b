"""A deterministic mail corpus: message ``i`` of a corpus is a pure function of ``(seed, i)``.

Random access by index means any subset, order or size is reproducible without storing the
corpus, a 1,000,000-message mailbox streams from the generator, and the driver can check any
downloaded message against the original by the index in its Message-ID.

What it looks like (chosen to resemble a real work mailbox):

- realistic headers: Received chain, DKIM-Signature, List-Id, X-Mailer, Cc; display names and
  subjects with non-ASCII text as RFC 2047 encoded-words; threads (In-Reply-To/References,
  "Re:" subjects) reaching back up to 40 messages;
- bodies: text/plain (8bit UTF-8, quoted-printable or base64) or multipart/alternative with an
  HTML part; a fraction ``attachment_rate`` with a base64 attachment of 50 KB to 1 MB
  (log-uniform); a few inline CSV parts and forwarded message/rfc822 parts;
- planted search needles (``NEEDLES``) on a fixed arithmetic pattern, so the expected SEARCH
  result count of any corpus size is known (``Corpus.expected_counts``). Needles are whole ASCII
  words on ASCII lines, so a server that decodes transfer encodings and one that tokenises both
  find them; the subject needles sit inside encoded-words, which a server must decode (RFC 2047).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import quopri
import random
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from bench import vocab

RCPT = "bench@example.com"
MESSAGE_ID_RE = re.compile(rb"Message-ID: <(\d+)\.(\d+)\.bench@corpus\.example>", re.IGNORECASE)


@dataclass(frozen=True)
class Needle:
    """A search needle: IMAP SEARCH key, search string, and which messages carry it."""

    key: str
    text: str
    charset: str | None = None


NEEDLES: dict[str, Needle] = {
    "from": Needle("FROM", "needle.sender@needles.example"),
    "subject": Needle("SUBJECT", "quokkaflux"),
    "body": Needle("BODY", "wombatquill"),
    "text": Needle("TEXT", "ibexmarrow"),
    "subject-utf8": Needle("SUBJECT", "Straußenfeder", charset="UTF-8"),
}

# index % modulus == remainder plants a needle (subject needles: on thread roots, inherited
# by the replies' "Re:" subjects).
_FROM_RULE = (101, 3)
_SUBJECT_RULE = (103, 5)
_BODY_RULE = (107, 7)
_TEXT_HEADER_RULE = (109, 11)
_TEXT_BODY_RULE = (113, 13)
_SUBJECT_UTF8_RULE = (127, 17)

_REPLY_PROBABILITY = 0.35
_THREAD_REACH = 40
_BASE_TIME = 1_672_531_200  # 2023-01-01T00:00:00Z
_SPACING = 600  # seconds between consecutive messages, on average


def _hit(i: int, rule: tuple[int, int]) -> bool:
    return i % rule[0] == rule[1]


@dataclass(frozen=True)
class CorpusSpec:
    """Which corpus: ``size`` messages generated from ``seed``. The scale profile (1M messages)
    uses a lower ``attachment_rate`` so that the mailbox stays a few GB."""

    size: int
    seed: int = 1
    attachment_rate: float = 0.04


@dataclass(frozen=True)
class Person:
    name: str
    address: str

    def header(self) -> str:
        return f"{encode_word(self.name, phrase=True)} <{self.address}>"


def encode_word(text: str, phrase: bool = False) -> str:
    """RFC 2047 section 2: non-ASCII text as one or more B encoded-words (each at most 75
    characters, split between characters so no encoded-word holds half a UTF-8 sequence);
    ASCII text unchanged, quoted if it is a ``phrase`` (display name) with specials."""
    if text.isascii():
        if phrase and any(c in text for c in ',.;:<>@"()[]'):
            return f'"{text}"'
        return text
    words: list[str] = []
    chunk = ""
    for char in text:
        if len((chunk + char).encode()) > 45:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return " ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def _fold(name: str, value: str) -> str:
    """A header field folded at spaces before 78 characters (RFC 5322 section 2.2.3)."""
    line = f"{name}: "
    out: list[str] = []
    for word in value.split(" "):
        if len(line) + len(word) > 76 and line.strip() != f"{name}:":
            out.append(line.rstrip(" "))
            line = " "
        line += word + " "
    out.append(line.rstrip(" "))
    return "\r\n".join(out)


class Corpus:
    """Message ``i`` (0-based) of the corpus described by ``spec``."""

    def __init__(self, spec: CorpusSpec) -> None:
        self.spec = spec
        people = []
        rng = random.Random(spec.seed)
        for n in range(300):
            first = vocab.FIRST_NAMES[n % len(vocab.FIRST_NAMES)]
            last = rng.choice(vocab.LAST_NAMES)
            domain = rng.choice(vocab.DOMAINS)
            local = f"{_ascii_fold(first)}.{_ascii_fold(last)}{n}".lower()
            people.append(Person(f"{first} {last}", f"{local}@{domain.encode('idna').decode()}"))
        self.people: tuple[Person, ...] = tuple(people)

    def __len__(self) -> int:
        return self.spec.size

    def _rng(self, i: int, salt: int = 0) -> random.Random:
        return random.Random((self.spec.seed * 1_000_003 + salt) * 10_000_019 + i)

    def parent(self, i: int) -> int | None:
        """The message ``i`` replies to, or None for a thread root. Messages that plant a
        subject needle are always roots, so the needle shows in the root's own subject."""
        if i == 0 or _hit(i, _SUBJECT_RULE) or _hit(i, _SUBJECT_UTF8_RULE):
            return None
        rng = self._rng(i, salt=1)
        if rng.random() >= _REPLY_PROBABILITY:
            return None
        return i - 1 - rng.randrange(min(i, _THREAD_REACH))

    def ancestors(self, i: int) -> list[int]:
        """Thread ancestors of ``i``, root first."""
        chain: list[int] = []
        p = self.parent(i)
        while p is not None:
            chain.append(p)
            p = self.parent(p)
        chain.reverse()
        return chain

    def root_subject(self, root: int) -> str:
        rng = self._rng(root, salt=2)
        words = [rng.choice(vocab.WORDS) for _ in range(rng.randint(3, 9))]
        words[0] = words[0].capitalize()
        if _hit(root, _SUBJECT_RULE):
            words.insert(rng.randint(1, len(words)), NEEDLES["subject"].text)
        if _hit(root, _SUBJECT_UTF8_RULE):
            words.insert(rng.randint(1, len(words)), NEEDLES["subject-utf8"].text)
        return " ".join(words)

    def message_id(self, i: int) -> str:
        return f"<{i}.{self.spec.seed}.bench@corpus.example>"

    def date(self, i: int) -> tuple[int, str]:
        """(epoch seconds, timezone) of message ``i``: increasing with ``i``, jittered."""
        rng = self._rng(i, salt=3)
        return _BASE_TIME + i * _SPACING + rng.randrange(_SPACING), rng.choice(vocab.TIMEZONES)

    # -- expectations -------------------------------------------------------------------------

    def carries(self, i: int, needle: str) -> bool:
        """Whether message ``i`` matches the SEARCH of needle ``needle``."""
        match needle:
            case "from":
                return _hit(i, _FROM_RULE)
            case "subject" | "subject-utf8":
                ancestors = self.ancestors(i)
                root = ancestors[0] if ancestors else i
                rule = _SUBJECT_RULE if needle == "subject" else _SUBJECT_UTF8_RULE
                return _hit(root, rule)
            case "body":
                return _hit(i, _BODY_RULE)
            case "text":
                return _hit(i, _TEXT_HEADER_RULE) or _hit(i, _TEXT_BODY_RULE)
        raise KeyError(needle)

    def expected_counts(self) -> dict[str, int]:
        """SEARCH result count per needle for the whole corpus."""
        return {
            name: sum(1 for i in range(self.spec.size) if self.carries(i, name)) for name in NEEDLES
        }

    def messages(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        for i in range(start, self.spec.size if stop is None else stop):
            yield self.message(i)

    @staticmethod
    def index_of(message: bytes) -> int | None:
        """The corpus index in a (downloaded) message's Message-ID, or None."""
        found = MESSAGE_ID_RE.search(message, 0, 1 << 16)
        return int(found.group(1)) if found else None

    def check(self, downloaded: bytes) -> int:
        """Verify a downloaded message: it must end with the original bytes (LMTP delivery may
        prepend trace fields such as Return-Path and Received). Returns the corpus index;
        raises ValueError on a mismatch."""
        i = self.index_of(downloaded)
        if i is None or not 0 <= i < self.spec.size:
            raise ValueError("downloaded message has no corpus Message-ID")
        original = self.message(i)
        if not downloaded.endswith(original):
            raise ValueError(
                f"message {i}: {len(downloaded)} octets downloaded do not end with the "
                f"{len(original)}-octet original (sha256 {hashlib.sha256(original).hexdigest()})"
            )
        return i

    # -- rendering ----------------------------------------------------------------------------

    def message(self, i: int) -> bytes:
        """The full message ``i``, CRLF line endings, as delivered."""
        rng = self._rng(i, salt=4)
        sender = (
            Person("Needle Sender", NEEDLES["from"].text)
            if _hit(i, _FROM_RULE)
            else rng.choice(self.people)
        )
        ancestors = self.ancestors(i)
        root = ancestors[0] if ancestors else i
        subject = self.root_subject(root)
        if ancestors:
            subject = ("Re: " if rng.random() < 0.8 else "AW: ") + subject
        when, tz = self.date(i)
        headers = self._trace_headers(rng, sender, when, tz)
        headers.append(_fold("From", sender.header()))
        recipients = [f"Bench User <{RCPT}>"]
        recipients += [p.header() for p in rng.sample(self.people, rng.choice((0, 0, 1, 2, 4)))]
        headers.append(_fold("To", ", ".join(recipients)))
        if rng.random() < 0.3:
            cc = ", ".join(p.header() for p in rng.sample(self.people, rng.randint(1, 3)))
            headers.append(_fold("Cc", cc))
        headers.append(_fold("Subject", encode_word(subject)))
        headers.append(f"Date: {_rfc5322_date(when, tz)}")
        headers.append(f"Message-ID: {self.message_id(i)}")
        if ancestors:
            headers.append(f"In-Reply-To: {self.message_id(ancestors[-1])}")
            refs = " ".join(self.message_id(a) for a in ancestors[-10:])
            headers.append(_fold("References", refs))
        if rng.random() < 0.25:
            name = rng.choice(vocab.LISTS)
            headers.append(f"List-Id: {name.capitalize()} list <{name}.lists.example.org>")
            headers.append(f"List-Unsubscribe: <mailto:{name}-leave@lists.example.org>")
        if rng.random() < 0.4:
            headers.append(f"X-Mailer: {rng.choice(_MAILERS)}")
        if _hit(i, _TEXT_HEADER_RULE):
            headers.append(f"X-Campaign: spring {NEEDLES['text'].text} {i}")
        headers.append("MIME-Version: 1.0")
        body_text = self._text(rng, i)
        part = self._body_part(rng, body_text, needle_safe=_hit(i, _BODY_RULE))
        extras: list[bytes] = []
        if rng.random() < self.spec.attachment_rate:
            extras.append(self._attachment(rng))
        if rng.random() < 0.03:
            extras.append(self._csv_part(rng))
        if rng.random() < 0.02:
            extras.append(self._forwarded(rng, i))
        if extras:
            boundary = f"=_mixed_{i}_{rng.getrandbits(32):08x}"
            head = f'Content-Type: multipart/mixed; boundary="{boundary}"'
            body = _multipart(boundary, [part, *extras], preamble=True)
            return "\r\n".join([*headers, head]).encode() + b"\r\n\r\n" + body
        return "\r\n".join(headers).encode() + b"\r\n" + part

    def _trace_headers(self, rng: random.Random, sender: Person, when: int, tz: str) -> list[str]:
        host = sender.address.rpartition("@")[2]
        out: list[str] = []
        for hop in range(rng.randint(1, 3)):
            ip = f"192.0.2.{rng.randrange(1, 255)}"
            value = (
                f"from mx{hop}.{host} (mx{hop}.{host} [{ip}]) by mail.example.com with ESMTPS "
                f"id {rng.getrandbits(48):012x} for <{RCPT}>; {_rfc5322_date(when - hop, tz)}"
            )
            out.append(_fold("Received", value))
        if rng.random() < 0.5:
            sig = base64.b64encode(rng.randbytes(192)).decode()
            bh = base64.b64encode(rng.randbytes(32)).decode()
            value = (
                f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={host}; s=sel1; "
                f"h=from:to:subject:date:message-id; bh={bh}; b={' '.join(_chunks(sig, 60))}"
            )
            out.append(_fold("DKIM-Signature", value))
        return out

    def _text(self, rng: random.Random, i: int) -> str:
        """Plain text body, lines wrapped at 72; needles on lines of their own."""
        target = int(math.exp(rng.uniform(math.log(300), math.log(8000))))
        first = rng.choice(self.people).name.split(" ")[0]
        lines = [f"Hello {first},", ""]
        size = 0
        while size < target:
            paragraph = " ".join(rng.choice(vocab.WORDS) for _ in range(rng.randint(12, 60)))
            for line in _wrap(paragraph.capitalize() + ".", 72):
                lines.append(line)
                size += len(line) + 2
            lines.append("")
        if _hit(i, _BODY_RULE):
            lines.insert(rng.randint(2, len(lines)), f"Reference: {NEEDLES['body'].text} {i}")
        if _hit(i, _TEXT_BODY_RULE):
            lines.insert(rng.randint(2, len(lines)), f"Code word {NEEDLES['text'].text} here.")
        lines += ["Regards,", rng.choice(self.people).name, ""]
        return "\r\n".join(lines)

    def _body_part(self, rng: random.Random, text: str, needle_safe: bool) -> bytes:
        """The message's text: text/plain, or multipart/alternative with an HTML twin.
        Returns a MIME entity (its Content-* header fields, blank line, body)."""
        plain = _text_entity("plain", text, rng, allow_base64=not needle_safe)
        if rng.random() < 0.55:
            return plain
        html = "<html><body>\r\n" + "".join(
            f"<p>{line}</p>\r\n" for line in text.split("\r\n") if line
        )
        html += "</body></html>\r\n"
        boundary = f"=_alt_{rng.getrandbits(40):010x}"
        alt = _text_entity("html", html, rng, allow_base64=False)
        head = f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        return head.encode() + _multipart(boundary, [plain, alt], preamble=False)

    def _attachment(self, rng: random.Random) -> bytes:
        size = int(math.exp(rng.uniform(math.log(50_000), math.log(1_000_000))))
        ctype, ext = rng.choice(vocab.ATTACHMENTS)
        stem = rng.choice(vocab.WORDS)
        filename = f"{stem}-{rng.randrange(1000)}.{ext}"
        if filename.isascii():
            disposition = f'attachment; filename="{filename}"'
        else:  # RFC 2231 section 4: charset'language'percent-encoded
            quoted = "".join(
                chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02X}" for b in filename.encode()
            )
            disposition = f"attachment; filename*=utf-8''{quoted}"
        data = base64.encodebytes(rng.randbytes(size)).replace(b"\n", b"\r\n")
        head = (
            f'Content-Type: {ctype}; name="{stem}.{ext}"\r\n'
            f"Content-Disposition: {disposition}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        )
        return head.encode() + data

    def _csv_part(self, rng: random.Random) -> bytes:
        rows = ["item,amount,owner"] + [
            f"{rng.choice(vocab.WORDS)},{rng.randrange(10_000)},{rng.choice(self.people).name}"
            for _ in range(rng.randint(3, 40))
        ]
        head = (
            'Content-Type: text/csv; charset="utf-8"\r\n'
            'Content-Disposition: inline; filename="figures.csv"\r\n'
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        )
        return head.encode() + ("\r\n".join(rows) + "\r\n").encode()

    def _forwarded(self, rng: random.Random, i: int) -> bytes:
        sender = rng.choice(self.people)
        when, tz = self.date(max(0, i - 500))
        inner = (
            f"From: {sender.header()}\r\n"
            f"To: {rng.choice(self.people).header()}\r\n"
            f"Subject: {encode_word(self.root_subject(max(0, i - 500)))}\r\n"
            f"Date: {_rfc5322_date(when, tz)}\r\n"
            f"Message-ID: <fwd.{i}.{self.spec.seed}@corpus.example>\r\n"
            "MIME-Version: 1.0\r\n"
        ).encode() + _text_entity("plain", self._text(rng, -1), rng, allow_base64=False)
        head = b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        return head + inner


_MAILERS = (
    "Mozilla Thunderbird 115.6",
    "Apple Mail (2.3774)",
    "Microsoft Outlook 16.0",
    "Evolution 3.46",
    "Mutt/2.2.9",
    "Roundcube Webmail/1.6",
)


def _text_entity(subtype: str, text: str, rng: random.Random, allow_base64: bool) -> bytes:
    raw = text.encode()
    roll = rng.random()
    if text.isascii():
        cte, body = "7bit", raw
    elif roll < 0.6:
        cte, body = "8bit", raw
    elif roll < 0.9 or not allow_base64:
        cte = "quoted-printable"
        body = quopri.encodestring(raw.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    else:
        cte, body = "base64", base64.encodebytes(raw).replace(b"\n", b"\r\n")
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    return head.encode() + b"\r\n" + body


def _multipart(boundary: str, parts: list[bytes], preamble: bool) -> bytes:
    """RFC 2046 section 5.1.1 body: parts between delimiter lines, then the close delimiter."""
    delimiter = b"--" + boundary.encode()
    out = [b"This is a multi-part message in MIME format.\r\n"] if preamble else []
    for part in parts:
        out += [delimiter, b"\r\n", part]
        if not part.endswith(b"\r\n"):
            out.append(b"\r\n")
    out += [delimiter, b"--\r\n"]
    return b"".join(out)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _chunks(text: str, n: int) -> list[str]:
    return [text[k : k + n] for k in range(0, len(text), n)]


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc5322_date(epoch: int, tz: str) -> str:
    """RFC 5322 section 3.3 date-time in zone ``tz`` (``+hhmm``)."""
    sign = -1 if tz[0] == "-" else 1
    offset = sign * (int(tz[1:3]) * 3600 + int(tz[3:5]) * 60)
    t = time.gmtime(epoch + offset)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {tz}"
    )


def imap_date(epoch: int, tz: str) -> str:
    """RFC 3501 date-time (APPEND's INTERNALDATE argument) for ``epoch`` in zone ``tz``."""
    sign = -1 if tz[0] == "-" else 1
    offset = sign * (int(tz[1:3]) * 3600 + int(tz[3:5]) * 60)
    t = time.gmtime(epoch + offset)
    return (
        f"{t.tm_mday:2d}-{_MONTHS[t.tm_mon - 1]}-{t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {tz}"
    )


def _ascii_fold(name: str) -> str:
    """An ASCII local part for a display name (non-Latin names get a stable hex tag)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    folded = "".join(c for c in folded if c.isalnum())
    return folded or "u" + binascii.hexlify(name.encode()[:4]).decode()
