"""The IMAP response reader, table-driven from RFC 9051 / RFC 7162 examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailkeep.client import imapwire as wire
from mailkeep.client.errors import ProtocolError


def parse_all(data: bytes, chunk: int = 0) -> list[wire.Response]:
    reader = wire.ResponseReader()
    responses: list[wire.Response] = []
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    for piece in pieces:
        reader.receive_data(piece)
        while (response := reader.next_response()) is not None:
            responses.append(response)
    return responses


def one(data: bytes) -> wire.Response:
    responses = parse_all(data)
    assert len(responses) == 1
    return responses[0]


def test_tagged_with_code() -> None:
    assert one(b"A1 OK [READ-WRITE] SELECT completed\r\n") == wire.Tagged(
        "A1", "OK", "READ-WRITE", (), "SELECT completed"
    )
    assert one(b"A2 NO [TRYCREATE] no such mailbox\r\n") == wire.Tagged(
        "A2", "NO", "TRYCREATE", (), "no such mailbox"
    )


def test_condition_codes_with_lists() -> None:
    response = one(b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n")
    assert response == wire.Condition(
        "OK", "PERMANENTFLAGS", (["\\Deleted", "\\Seen", "\\*"],), "Limited"
    )
    response = one(b"A3 OK [APPENDUID 38505 3955] APPEND completed\r\n")
    assert isinstance(response, wire.Tagged)
    assert wire.code_int(response, 0) == 38505
    assert wire.code_int(response, 1) == 3955


def test_continuation_and_numbers() -> None:
    assert one(b"+ Ready for literal data\r\n") == wire.Continuation("Ready for literal data")
    assert one(b"+\r\n") == wire.Continuation("")
    assert one(b"* 23 EXISTS\r\n") == wire.Exists(23)
    assert one(b"* 3 EXPUNGE\r\n") == wire.Expunge(3)
    assert one(b"* CAPABILITY IMAP4rev1 condstore Idle\r\n") == wire.Capability(
        frozenset({"IMAP4REV1", "CONDSTORE", "IDLE"})
    )


@pytest.mark.parametrize("chunk", [0, 1, 7])
def test_fetch_with_literal_split_anywhere(chunk: int) -> None:
    data = (
        b'* 12 FETCH (UID 40 FLAGS (\\Seen $Junk) INTERNALDATE "17-Jul-1996 02:44:25 -0700"'
        b" RFC822.SIZE 11 MODSEQ (624140003) BODY[] {11}\r\nHello\r\nYou! "
        b"BODY[HEADER.FIELDS (MESSAGE-ID)] {4}\r\nab\r\n)\r\n* 13 EXISTS\r\n"
    )
    fetch, exists = parse_all(data, chunk)
    assert isinstance(fetch, wire.Fetch)
    assert fetch.seq == 12
    assert fetch.uid == 40
    assert fetch.flags == ("\\Seen", "$Junk")
    assert fetch.size == 11
    assert fetch.modseq == 624140003
    assert fetch.section("BODY.PEEK[]") == b"Hello\r\nYou!"
    assert fetch.section("BODY[HEADER.FIELDS (MESSAGE-ID)]") == b"ab\r\n"
    assert fetch.internaldate == datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7))
    )
    assert exists == wire.Exists(13)


def test_large_literal_is_spooled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "SPOOL_THRESHOLD", 10)
    body = b"x" * 5000
    (fetch,) = parse_all(b"* 1 FETCH (UID 1 BODY[] {5000}\r\n" + body + b")\r\n", 333)
    assert isinstance(fetch, wire.Fetch)
    spooled = fetch.section()
    assert isinstance(spooled, wire.FileLiteral)
    assert spooled.size == 5000
    assert spooled.read() == body
    fetch.close()


def test_list_status_search_vanished_namespace() -> None:
    assert one(b'* LIST (\\HasNoChildren) "." "Entw&APw-rfe"\r\n') == wire.ListEntry(
        frozenset({"\\HasNoChildren"}), ".", "Entwürfe"
    )
    entry = one(b"* LIST (\\Noselect) NIL {3}\r\na b\r\n")
    assert entry == wire.ListEntry(frozenset({"\\Noselect"}), None, "a b")
    assert isinstance(entry, wire.ListEntry)
    assert not entry.selectable
    assert one(b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n") == wire.Status(
        "blurdybloop", {"MESSAGES": 231, "UIDNEXT": 44292}
    )
    assert one(b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n") == wire.Search((2, 5, 6), 917162500)
    assert one(b"* SEARCH\r\n") == wire.Search(())
    assert one(b"* VANISHED (EARLIER) 41,43:45\r\n") == wire.Vanished(True, (41, 43, 44, 45))
    assert one(b"* VANISHED 7\r\n") == wire.Vanished(False, (7,))
    assert one(b'* NAMESPACE (("" "/")) NIL (("#shared/" "/"))\r\n') == wire.Namespace(
        (("", "/"),), (), (("#shared/", "/"),)
    )


def test_quoted_escapes_and_nil() -> None:
    response = one(b'* 1 FETCH (ENVELOPE (NIL "a \\"q\\" \\\\ b"))\r\n')
    assert isinstance(response, wire.Fetch)
    assert response.attrs["ENVELOPE"] == [None, b'a "q" \\ b']


def test_malformed_responses_raise() -> None:
    with pytest.raises(ProtocolError):
        one(b'* 1 FETCH (UID "unterminated)\r\n')
    with pytest.raises(ProtocolError):
        one(b"* 1 FETCH UID 1\r\n")


@pytest.mark.parametrize(
    ("text", "uids"),
    [("1", (1,)), ("1:3,7", (1, 2, 3, 7)), ("5:3", (3, 4, 5)), ("1,2:4,9:10", (1, 2, 3, 4, 9, 10))],
)
def test_uid_sets_round_trip(text: str, uids: tuple[int, ...]) -> None:
    assert wire.parse_uid_set(text) == uids
    assert wire.parse_uid_set(wire.format_uid_set(uids)) == uids
    assert wire.format_uid_set([3, 1, 2, 2, 9]) == "1:3,9"


@pytest.mark.parametrize(
    "name", ["INBOX", "Entwürfe", "a&b", "日本語/子", "~peter/mail/台北/日本語", "&-", ""]
)
def test_modified_utf7_round_trip(name: str) -> None:
    encoded = wire.encode_mailbox(name)
    assert encoded.isascii()
    assert wire.decode_mailbox(encoded) == name


def test_modified_utf7_rfc_example() -> None:
    # RFC 3501 5.1.3
    assert wire.encode_mailbox("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"


def test_datetime_round_trip() -> None:
    moment = datetime(2024, 2, 29, 23, 5, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    text = wire.format_datetime(moment)
    assert text == '"29-Feb-2024 23:05:01 -0530"'
    assert wire.parse_datetime(text.strip('"')) == moment
    assert wire.format_datetime(datetime(2024, 1, 2, 3, 4, 5)) == '"02-Jan-2024 03:04:05 +0000"'
    assert wire.parse_datetime(" 2-Jan-2024 03:04:05 +0000") == datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=UTC
    )


def test_quote() -> None:
    assert wire.quote("INBOX") == b"INBOX"
    assert wire.quote("a b") == b'"a b"'
    assert wire.quote('a"b\\') == b'"a\\"b\\\\"'
    assert wire.quote("") == b'""'
    assert wire.needs_literal("é".encode())
    assert not wire.needs_literal(b"plain")
