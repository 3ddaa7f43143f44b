"""RFC 5322 / RFC 2045 lexical tokens of structured header values (addresses, MIME types).

The rules follow Dovecot's ``rfc822-parser`` so that ENVELOPE and BODYSTRUCTURE come out
octet for octet the same as Dovecot's (our reference server) on odd input, and are lenient:

    atext      = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
                 "/" / "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~"   (RFC 5322 3.2.3)
    token      = 1*<any CHAR except SPACE, CTLs, or tspecials>                (RFC 2045 5.1)
    CFWS       = comments and folding white space; comments nest             (RFC 5322 3.2.2)

8-bit octets count as atext/token characters (raw UTF-8 in headers, RFC 6532). Scanning uses
regular expressions for runs, so long values cost C time, not a Python step per octet.

Return conventions mirror Dovecot's: ``1`` more data follows, ``0`` end of input reached,
``-1`` syntax error (the position is then left where the error was found).
"""

from __future__ import annotations

import re

_LWSP = re.compile(rb"[ \t\r\n]*")
_ATEXT = rb"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff"
_ATOM = re.compile(rb"[" + _ATEXT + rb"]+")
_ATOM_OR_DOT = re.compile(rb"[" + _ATEXT + rb".]*")
_TOKEN = re.compile(rb"[A-Za-z0-9!#$%&'*+\-^_`{|}~\x80-\xff.]*")
_COMMENT_SPECIAL = re.compile(rb"[()\\]")
_QUOTED_SPECIAL = re.compile(rb'["\n\\]')
_LITERAL_END = re.compile(rb"[\]\\]")
_IS_ATEXT = frozenset(b"!#$%&'*+-/=?^_`{|}~0123456789") | frozenset(
    range(ord("A"), ord("Z") + 1)
) | frozenset(range(ord("a"), ord("z") + 1)) | frozenset(range(0x80, 0x100))  # fmt: skip


def is_atext(octet: int) -> bool:
    return octet in _IS_ATEXT


class Lexer:
    """A cursor over one header value."""

    __slots__ = ("data", "end", "last_comment", "pos")

    def __init__(self, data: bytes, *, keep_comments: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment: bytearray | None = bytearray() if keep_comments else None

    def at_end(self) -> bool:
        return self.pos >= self.end

    def peek(self) -> int:
        """The octet at the cursor, or -1 at the end."""
        return self.data[self.pos] if self.pos < self.end else -1

    def skip_comment(self) -> int:
        """Skip a (possibly nested) comment starting at ``(``."""
        data = self.data
        if self.last_comment is not None:
            del self.last_comment[:]
        self.pos += 1
        start = self.pos
        level = 1
        while True:
            m = _COMMENT_SPECIAL.search(data, self.pos)
            if m is None:
                self.pos = self.end
                return -1
            i = m.start()
            ch = data[i]
            if ch == 0x28:  # (
                level += 1
                self.pos = i + 1
            elif ch == 0x29:  # )
                level -= 1
                self.pos = i + 1
                if level == 0:
                    if self.last_comment is not None:
                        self.last_comment += data[start:i]
                    return 1 if self.pos < self.end else 0
            else:  # backslash: quoted-pair, drop the backslash from the comment text
                if self.last_comment is not None:
                    self.last_comment += data[start:i]
                start = i + 1
                if i + 1 >= self.end:
                    self.pos = self.end
                    return -1
                self.pos = i + 2

    def skip_lwsp(self) -> int:
        """Skip white space (including CR/LF of folding) and comments."""
        while True:
            self.pos = _LWSP.match(self.data, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= self.end:
                return 0
            if self.data[self.pos] != 0x28:
                return 1
            if self.skip_comment() < 0:
                return -1

    def mime_token(self, out: bytearray) -> int:
        """A MIME token (may be empty), then CFWS."""
        m = _TOKEN.match(self.data, self.pos)
        assert m is not None
        out += m.group()
        self.pos = m.end()
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def quoted_string(self, out: bytearray) -> int:
        """A quoted-string starting at ``"``: escapes resolved, folding CR/LF removed."""
        data = self.data
        self.pos += 1
        start = self.pos
        while True:
            m = _QUOTED_SPECIAL.search(data, self.pos)
            if m is None:
                self.pos = self.end
                return -1
            i = m.start()
            ch = data[i]
            if ch == 0x22:  # closing quote
                out += data[start:i]
                self.pos = i + 1
                return self.skip_lwsp()
            if ch == 0x0A:
                stop = i - 1 if i > start and data[i - 1] == 0x0D else i
                out += data[start:stop]
                start = self.pos = i + 1
            else:  # backslash
                if i + 1 >= self.end:
                    self.pos = self.end
                    return -1
                out += data[start:i]
                start = i + 1
                self.pos = i + 2

    def atom(self, out: bytearray) -> int:
        m = _ATOM.match(self.data, self.pos)
        if m is None:
            return -1
        out += m.group()
        self.pos = m.end()
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def dot_atom(self, out: bytearray) -> int:
        """dot-atom, allowing CFWS around the dots (RFC 822 compatibility)."""
        m = _ATOM.match(self.data, self.pos)
        if m is None:
            return -1
        while True:
            out += m.group()
            self.pos = m.end()
            if self.pos >= self.end:
                return 0
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if self.data[self.pos] != 0x2E:  # .
                return 1
            self.pos += 1
            out.append(0x2E)
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            m = _ATOM.match(self.data, self.pos)
            if m is None:
                # Dovecot accepts "a..b" and "a. " here: an empty run of atext.
                m = _ATOM_OR_DOT.match(self.data, self.pos, self.pos)
                assert m is not None

    def _atom_or_dot(self, out: bytearray) -> int:
        m = _ATOM_OR_DOT.match(self.data, self.pos)
        assert m is not None
        out += m.group()
        self.pos = m.end()
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def phrase(self, out: bytearray) -> int:
        """phrase = 1*word / obs-phrase; words joined by one space."""
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == 0x2E:
            return -1
        while True:
            ret = self.quoted_string(out) if self.data[self.pos] == 34 else self._atom_or_dot(out)
            if ret <= 0:
                return ret
            ch = self.data[self.pos]
            if not (is_atext(ch) or ch == 0x22 or ch == 0x2E):
                break
            out.append(0x20)
        return self.skip_lwsp()

    def _domain_literal(self, out: bytearray) -> int:
        data = self.data
        start = self.pos
        i = self.pos
        while True:
            m = _LITERAL_END.search(data, i)
            if m is None:
                self.pos = self.end
                return -1
            i = m.start()
            if data[i] == 0x5C:  # backslash
                i += 2
                if i > self.end:
                    self.pos = self.end
                    return -1
                continue
            self.pos = i + 1
            out += data[start : self.pos]
            return self.skip_lwsp()

    def domain(self, out: bytearray) -> int:
        """``@`` domain (the cursor is on the ``@``)."""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == 0x5B:  # [
            return self._domain_literal(out)
        return self.dot_atom(out)
