"""Address lists (RFC 5322 3.4, with obsolete syntax of 4.4): parsing, search text, sort keys.

    address-list = (address *("," address)) / obs-addr-list
    address      = mailbox / group
    mailbox      = name-addr / addr-spec
    name-addr    = [display-name] angle-addr
    angle-addr   = [CFWS] "<" [obs-route] addr-spec ">" [CFWS]
    group        = display-name ":" [group-list] ";" [CFWS]

The parse follows Dovecot's ``message-address`` so ENVELOPE matches it: a comment after an
addr-spec becomes the display name (``jdoe@example.com (John Doe)``), ``<>`` is an empty
address, missing parts are filled with ``MISSING_MAILBOX`` / ``MISSING_DOMAIN`` (for
ENVELOPE only), a broken angle-addr gets the domain ``SYNTAX_ERROR``, and parsing resumes
after garbage where it can. Groups are represented as in ENVELOPE (RFC 9051 7.5.2): a start
marker (mailbox = group name, domain None) and an end marker (all None).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailkeep.mail.lexer import Lexer
from mailkeep.mail.rfc2047 import decode_words


@dataclass(frozen=True, slots=True)
class Address:
    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    domain: bytes | None

    @property
    def is_group_start(self) -> bool:
        return self.domain is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.domain is None and self.mailbox is None


class _Parser:
    def __init__(self, value: bytes, fill_missing: bool) -> None:
        self.lex = Lexer(value, keep_comments=True)
        self.fill_missing = fill_missing
        self.out: list[Address] = []
        self._reset()

    def _reset(self) -> None:
        self.name: bytes | None = None
        self.route: bytes | None = None
        self.mailbox: bytes | None = None
        self.domain: bytes | None = None

    def _add(self) -> None:
        self.out.append(Address(self.name, self.route, self.mailbox, self.domain))
        self._reset()

    def _add_fixed(self) -> None:
        if self.mailbox is None:
            self.mailbox = b"MISSING_MAILBOX" if self.fill_missing else b""
        if self.domain is None:
            self.domain = b"MISSING_DOMAIN" if self.fill_missing else b""
        self._add()

    def _local_part(self) -> int:
        lex = self.lex
        if lex.at_end():
            return -1
        text = bytearray()
        ret = lex.quoted_string(text) if lex.peek() == 0x22 else lex.dot_atom(text)
        if ret < 0:
            return -1
        self.mailbox = bytes(text)
        return ret

    def _domain(self) -> int:
        text = bytearray()
        ret = self.lex.domain(text)
        if ret < 0:
            return -1
        self.domain = bytes(text)
        return ret

    def _domain_list(self) -> int:
        """obs-domain-list = "@" domain *(*(CFWS / ",") [CFWS] "@" domain)"""
        lex = self.lex
        text = bytearray()
        while True:
            if lex.at_end():
                return 0
            if lex.peek() != 0x40:
                break
            if text:
                text.append(0x2C)
            text.append(0x40)
            ret = lex.domain(text)
            if ret <= 0:
                return ret
            while lex.skip_lwsp() > 0 and lex.peek() == 0x2C:
                lex.pos += 1
        self.route = bytes(text)
        return 1

    def _angle_addr(self) -> int:
        lex = self.lex
        lex.pos += 1  # <
        ret = lex.skip_lwsp()
        if ret <= 0:
            return ret
        if lex.peek() == 0x3E:  # "<>": the null address, not a syntax error
            lex.pos += 1
            return lex.skip_lwsp()
        if lex.peek() == 0x40:
            if self._domain_list() <= 0 or lex.peek() != 0x3A:
                self.route = b"INVALID_ROUTE"
                return -1
            lex.pos += 1
            ret = lex.skip_lwsp()
            if ret <= 0:
                return ret
        ret = self._local_part()
        if ret <= 0:
            return ret
        if lex.peek() == 0x40:
            ret = self._domain()
            if ret <= 0:
                return ret
        if lex.peek() != 0x3E:
            return -1
        lex.pos += 1
        return lex.skip_lwsp()

    def _name_addr(self) -> int:
        lex = self.lex
        text = bytearray()
        if lex.phrase(text) <= 0 or lex.peek() != 0x3C:
            return -1
        self.name = bytes(text) or None
        if self._angle_addr() < 0:
            self.domain = b"SYNTAX_ERROR"
        return 0 if lex.at_end() else 1

    def _addr_spec(self) -> int:
        lex = self.lex
        assert lex.last_comment is not None
        del lex.last_comment[:]
        ret = self._local_part()
        if ret != 0 and lex.peek() == 0x40:
            ret2 = self._domain()
            if ret2 <= 0:
                ret = ret2
        if lex.last_comment:
            self.name = bytes(lex.last_comment)
        return ret

    def _mailbox(self) -> int:
        start = self.lex.pos
        ret = self._name_addr()
        if ret < 0:
            self.lex.pos = start
            self._reset()
            ret = self._addr_spec()
        self._add_fixed()
        return ret

    def _group(self) -> int:
        lex = self.lex
        text = bytearray()
        if lex.phrase(text) <= 0 or lex.peek() != 0x3A:
            return -1
        lex.pos += 1
        ret = lex.skip_lwsp()
        self.mailbox = bytes(text)
        self._add()
        if ret > 0 and lex.peek() != 0x3B:
            while True:
                if self._mailbox() <= 0:
                    ret = -1
                    break
                if lex.peek() != 0x2C:
                    break
                lex.pos += 1
                if lex.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if lex.peek() != 0x3B:
                ret = -1
            else:
                lex.pos += 1
                ret = lex.skip_lwsp()
        self._add()
        return 0 if ret == 0 else 1

    def _address(self) -> int:
        start = self.lex.pos
        ret = self._group()
        if ret < 0:
            self.lex.pos = start
            self._reset()
            ret = self._mailbox()
        return ret

    def parse(self, limit: int) -> list[Address]:
        lex = self.lex
        if lex.skip_lwsp() <= 0:
            return []
        while len(self.out) < limit:
            if self._address() == 0:
                break
            if lex.peek() != 0x2C:
                break
            lex.pos += 1
            ret = lex.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self._add_fixed()
                break
        return self.out


MAX_ADDRESSES = 2_000
"""Addresses parsed per field; the rest of an absurdly long list is ignored."""
_MISSING = (b"MISSING_MAILBOX", b"MISSING_DOMAIN")


def parse_addresses(
    value: bytes | None, *, fill_missing: bool = True, limit: int = MAX_ADDRESSES
) -> list[Address]:
    """The addresses (and group markers) of an address-list header value, at most
    about ``limit`` of them. ``fill_missing`` puts ENVELOPE's MISSING_MAILBOX /
    MISSING_DOMAIN placeholders where a part is missing (else empty strings)."""
    if value is None:
        return []
    return _Parser(value, fill_missing).parse(limit)


def _part_text(value: bytes | None) -> str:
    """A mailbox or domain for search text (ENVELOPE placeholders count as missing)."""
    return "" if value is None or value in _MISSING else decode_words(value)


def _addr_spec_text(a: Address) -> str:
    mailbox = _part_text(a.mailbox)
    domain = _part_text(a.domain)
    return f"{mailbox}@{domain}" if domain else mailbox


def search_text(addresses: list[Address]) -> str:
    """``Name <mailbox@domain>, ...`` with display names RFC 2047-decoded; groups kept."""
    out: list[str] = []
    members: list[str] = []
    group: str | None = None
    for a in addresses:
        if a.is_group_start:
            group = decode_words(a.mailbox or b"")
            members = []
        elif a.is_group_end:
            if group is not None:
                out.append(f"{group}: {', '.join(members)};")
            group = None
        else:
            spec = _addr_spec_text(a)
            text = f"{decode_words(a.name)} <{spec}>" if a.name else spec
            if text:
                (members if group is not None else out).append(text)
    if group is not None:
        out.append(f"{group}: {', '.join(members)};")
    return ", ".join(out)


def _first_mailbox(addresses: list[Address]) -> Address | None:
    for a in addresses:
        if a.domain is not None:
            return a
    return None


def sort_key(addresses: list[Address]) -> str:
    """RFC 5256 3: the addr-mailbox of the first address, lowercased ("" if none)."""
    first = _first_mailbox(addresses)
    if first is None:
        return ""
    return _part_text(first.mailbox).lower()


def display_key(addresses: list[Address]) -> str:
    """RFC 5957 DISPLAYFROM/DISPLAYTO: the decoded display name of the first address, else
    its addr-spec; casefolded, because the comparator (i;unicode-casemap) ignores case."""
    first = _first_mailbox(addresses)
    if first is None:
        return ""
    if first.name:
        name = decode_words(first.name).strip()
        if name:
            return name.casefold()
    return _addr_spec_text(first).casefold()
