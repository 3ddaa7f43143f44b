"""Transcripts of the SMTP/LMTP/submission session machine, without sockets.

``E:`` lines are the questions the machine asks its caller; the S: lines after them are
the answers the test plays (see ``transcript.py``)."""

from __future__ import annotations

import pytest

from mailkeep.smtp.commands import reply
from mailkeep.smtp.session import (
    ConnectionClosed,
    MessageReceived,
    Mode,
    NeedData,
    Respond,
    Session,
    Settings,
)

from .transcript import run

HOST = "mx.example"


def smtp(**kwargs: object) -> Settings:
    return Settings(Mode.SMTP, HOST, max_message=1000, max_line=200, **kwargs)  # type: ignore[arg-type]


def lmtp(**kwargs: object) -> Settings:
    return Settings(Mode.LMTP, HOST, max_message=1000, max_line=200, **kwargs)  # type: ignore[arg-type]


def submission(**kwargs: object) -> Settings:
    settings: dict[str, object] = {
        "auth_clear": ("SCRAM-SHA-256", "PLAIN", "LOGIN"),
        "auth_tls": ("SCRAM-SHA-256", "PLAIN", "LOGIN"),
    }
    settings.update(kwargs)
    return Settings(Mode.SUBMISSION, HOST, max_message=1000, max_line=200, **settings)  # type: ignore[arg-type]


EHLO = """
    S: 250-mx.example
    S: 250-PIPELINING
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250-SMTPUTF8
    S: 250-ENHANCEDSTATUSCODES
    S: 250-CHUNKING
"""

# ------------------------------------------------------------------------ greetings


def test_ehlo_lists_the_extensions() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: EHLO client.example
        """
        + EHLO
        + """
        S: 250 HELP
        """,
        smtp(),
    )


def test_ehlo_offers_starttls_when_a_certificate_is_there() -> None:
    run(
        "S: 220 mx.example ESMTP mailkeep\nC: EHLO c\n" + EHLO + "S: 250-STARTTLS\nS: 250 HELP\n",
        smtp(starttls=True),
    )


def test_submission_ehlo_offers_auth() -> None:
    run(
        "S: 220 mx.example ESMTP mailkeep\nC: EHLO c\n"
        + EHLO
        + "S: 250-AUTH SCRAM-SHA-256 PLAIN LOGIN\nS: 250 HELP\n",
        submission(),
    )


def test_helo_and_its_syntax() -> None:
    session = run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: EHLO
        S: 501 5.5.4 EHLO needs your domain name or address literal
        C: HELO
        S: 501 5.5.4 HELO needs your domain name or address literal
        C: helo client.example
        S: 250 mx.example
        """,
        smtp(),
    )
    assert session.helo == "client.example"
    assert session.protocol == "SMTP"


def test_lmtp_wants_lhlo_and_smtp_refuses_it() -> None:
    run(
        """
        S: 220 mx.example LMTP mailkeep
        C: HELO c
        S: 500 5.5.1 this is LMTP: say LHLO (RFC 2033)
        C: EHLO c
        S: 500 5.5.1 this is LMTP: say LHLO (RFC 2033)
        C: MAIL FROM:<a@b.example>
        S: 503 5.5.1 send LHLO first
        C: LHLO c
        """
        + EHLO
        + """
        S: 250 HELP
        """,
        lmtp(),
    )
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: LHLO c
        S: 500 5.5.1 this is SMTP, not LMTP: say EHLO or HELO
        C: MAIL FROM:<a@b.example>
        S: 503 5.5.1 send EHLO first
        """,
        smtp(),
    )


# ------------------------------------------------------------------------ transactions


def test_smtp_transaction_with_dot_unstuffing() -> None:
    session = run(
        r"""
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<alice@a.example>
        E: MAIL <alice@a.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<bob@mx.example>
        E: RCPT <bob@mx.example>
        S: 250 2.1.5 <bob@mx.example> OK
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Subject: hi
        C:
        C: ..leading dot
        C: .
        E: MESSAGE <alice@a.example> -> <bob@mx.example>
        D: b"Subject: hi\r\n\r\n.leading dot\r\n"
        S: 250 2.0.0 OK
        C: QUIT
        S: 221 2.0.0 mx.example closing
        """,
        smtp(),
    )
    assert session.closed
    assert session.ended == "QUIT"


def test_refused_recipients_leave_no_valid_recipient_for_data() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<>
        E: MAIL <>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<nobody@mx.example>
        E: RCPT <nobody@mx.example>
        S: 550 5.1.1 <nobody@mx.example>: no such user here
        C: DATA
        S: 554 5.5.1 no valid recipients
        C: RSET
        S: 250 2.0.0 OK
        C: DATA
        S: 503 5.5.1 need MAIL and RCPT before the message
        C: RCPT TO:<bob@mx.example>
        S: 503 5.5.1 need MAIL before RCPT
        """,
        smtp(),
    )
    run(
        """
        S: 220 mx.example LMTP mailkeep
        C: LHLO c
        """
        + EHLO
        + """
        S: 250 HELP
        C: MAIL FROM:<>
        E: MAIL <>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<nobody@mx.example>
        E: RCPT <nobody@mx.example>
        S: 550 5.1.1 <nobody@mx.example>: no such user here
        C: DATA
        S: 503 5.5.1 no valid recipients
        """,
        lmtp(),
    )


def test_lmtp_answers_once_per_accepted_recipient_after_the_data() -> None:
    run(
        r"""
        S: 220 mx.example LMTP mailkeep
        C: LHLO mta.example
        """
        + EHLO
        + r"""
        S: 250 HELP
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<one@mx.example>
        C: RCPT TO:<ghost@mx.example>
        C: RCPT TO:<two@mx.example>
        C: RCPT TO:<full@mx.example>
        C: DATA
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <one@mx.example>
        S: 250 2.1.5 OK
        E: RCPT <ghost@mx.example>
        S: 550 5.1.1 <ghost@mx.example>: no such user here
        E: RCPT <two@mx.example>
        S: 250 2.1.5 OK
        E: RCPT <full@mx.example>
        S: 250 2.1.5 OK
        S: 354 End data with <CR><LF>.<CR><LF>
        C: hello
        C: .
        E: MESSAGE <a@b.example> -> <one@mx.example> <two@mx.example> <full@mx.example>
        D: b"hello\r\n"
        S: 250 2.0.0 <one@mx.example> delivered
        S: 550 5.1.1 <two@mx.example>: no such user here
        S: 452 4.2.2 <full@mx.example>: mailbox full (over quota); try again later
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        """,
        lmtp(),
    )


def test_pipelined_transaction_answers_in_order() -> None:
    run(
        r"""
        S: 220 mx.example ESMTP mailkeep
        C: EHLO c
        C: MAIL FROM:<a@b.example> SIZE=20 BODY=8BITMIME
        C: RCPT TO:<x@mx.example>
        C: RCPT TO:<y@mx.example>
        C: DATA
        """
        + EHLO
        + r"""
        S: 250 HELP
        E: MAIL <a@b.example> SIZE=20 BODY=8BITMIME
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example> SIZE=20
        S: 250 2.1.5 OK
        E: RCPT <y@mx.example> SIZE=20
        S: 550 5.1.1 no
        S: 354 End data with <CR><LF>.<CR><LF>
        R: caf\xc3\xa9\r\n.\r\nQUIT\r\n
        E: MESSAGE <a@b.example> -> <x@mx.example> 8BIT
        D: b"caf\xc3\xa9\r\n"
        S: 250 2.0.0 OK
        S: 221 2.0.0 mx.example closing
        """,
        smtp(),
    )


def test_ehlo_and_rset_end_a_transaction() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        C: MAIL FROM:<a@b.example>
        S: 503 5.5.1 nested MAIL command: RSET first
        C: HELO c
        S: 250 mx.example
        C: RCPT TO:<x@mx.example>
        S: 503 5.5.1 need MAIL before RCPT
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        C: RSET
        S: 250 2.0.0 OK
        C: RCPT TO:<x@mx.example>
        S: 503 5.5.1 need MAIL before RCPT
        """,
        smtp(),
    )


def test_refused_sender_starts_no_transaction() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<spoof@x.example>
        E: MAIL <spoof@x.example>
        S: 553 5.7.1 not yours
        C: RCPT TO:<x@mx.example>
        S: 503 5.5.1 need MAIL before RCPT
        """,
        smtp(),
    )


def test_empty_message() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: DATA
        S: 250 mx.example
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        S: 354 End data with <CR><LF>.<CR><LF>
        C: .
        E: MESSAGE <a@b.example> -> <x@mx.example>
        D: b""
        S: 250 2.0.0 OK
        """,
        smtp(),
    )


# ------------------------------------------------------------------------ other commands


def test_small_commands() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: NOOP
        S: 250 2.0.0 OK
        C: noop with an argument
        S: 250 2.0.0 OK
        C: VRFY postmaster
        S: 252 2.5.0 cannot VRFY user, but will accept the message
        C: VRFY
        S: 501 5.5.4 VRFY needs an argument
        C: EXPN staff
        S: 502 5.5.1 EXPN is not implemented
        C: TURN
        S: 502 5.5.1 TURN is not implemented
        C: HELP
        S: 214-2.0.0 commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS
        S: 214 2.0.0 see RFC 5321
        C: FROB nicate
        S: 500 5.5.2 command not recognized: FROB
        C:
        S: 500 5.5.2 empty command
        C: RSET now
        S: 501 5.5.4 RSET takes no arguments
        C: RSET
        S: 250 2.0.0 OK
        C: quit
        S: 221 2.0.0 mx.example closing
        """,
        smtp(),
    )


def test_command_syntax_errors() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL TO:<a@b.example>
        S: 501 5.5.4 syntax: MAIL FROM:<address> [parameters]
        C: MAIL FROM:<a@b.example
        S: 501 5.1.3 missing > after the address
        C: MAIL FROM:<not an address>
        S: 501 5.1.3 bad address syntax: <not an address>
        C: MAIL FROM:<a@b.example> FOO=bar
        S: 555 5.5.4 MAIL FROM parameter FOO not supported
        C: MAIL FROM:<a@b.example> BODY=BINARYMIME
        S: 555 5.5.4 BODY=BINARYMIME is not supported (7BIT, 8BITMIME)
        C: MAIL FROM:<a@b.example> SIZE=big
        S: 501 5.5.4 SIZE needs a number of octets
        C: MAIL FROM:<a@b.example> SIZE=1 SIZE=2
        S: 501 5.5.4 parameter SIZE given twice
        C: MAIL FROM: <a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<>
        S: 501 5.1.3 an empty address is not a recipient
        C: RCPT TO:<x@mx.example> NOTIFY=NEVER
        S: 555 5.5.4 RCPT TO parameters not supported: NOTIFY
        C: RCPT TO:x@mx.example
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        C: RCPT TO:<@relay.example:y@mx.example>
        E: RCPT <y@mx.example>
        S: 250 2.1.5 OK
        C: RCPT TO:<Postmaster>
        E: RCPT <postmaster>
        S: 250 2.1.5 OK
        C: DATA now
        S: 501 5.5.4 DATA takes no arguments
        """,
        smtp(),
    )


def test_nul_and_invalid_utf8_in_commands() -> None:
    run(
        r"""
        S: 220 mx.example ESMTP mailkeep
        R: HELO a\x00b\r\n
        S: 500 5.5.2 NUL octet in command
        R: HELO \xff\xfe\r\n
        S: 500 5.5.2 command is not valid UTF-8
        R: HELO bare-lf\n
        S: 250 mx.example
        """,
        smtp(),
    )


def test_non_ascii_addresses_need_smtputf8() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: EHLO c
        """
        + EHLO
        + """
        S: 250 HELP
        C: MAIL FROM:<jösé@b.example>
        S: 553 5.6.7 <jösé@b.example>: non-ASCII address needs MAIL FROM ... SMTPUTF8
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<ñ@mx.example>
        S: 553 5.6.7 <ñ@mx.example>: non-ASCII address needs MAIL FROM ... SMTPUTF8
        C: RSET
        S: 250 2.0.0 OK
        C: MAIL FROM:<jösé@b.example> SMTPUTF8
        E: MAIL <jösé@b.example> SMTPUTF8
        S: 250 2.1.0 sender OK
        C: RCPT TO:<ñ@mx.example>
        E: RCPT <ñ@mx.example>
        S: 250 2.1.5 OK
        """,
        smtp(),
    )


# ------------------------------------------------------------------------ limits


def test_declared_size_over_the_limit_is_refused_at_mail() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<a@b.example> SIZE=1001
        S: 552 5.3.4 message size exceeds the limit of 1000 octets
        C: MAIL FROM:<a@b.example> SIZE=1000
        E: MAIL <a@b.example> SIZE=1000
        S: 250 2.1.0 sender OK
        """,
        smtp(),
    )


def test_oversized_data_is_read_to_the_end_then_refused() -> None:
    big = "x" * 98
    lines = "\n".join(f"C: {big}" for _ in range(11))  # 11 * 100 octets > 1000
    run(
        f"""
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: DATA
        S: 250 mx.example
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        S: 354 End data with <CR><LF>.<CR><LF>
        {lines}
        C: .
        S: 552 5.3.4 message size exceeds the limit of 1000 octets
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        """,
        smtp(),
    )


def test_oversized_data_in_lmtp_is_refused_per_recipient() -> None:
    big = "x" * 998
    run(
        """
        S: 220 mx.example LMTP mailkeep
        C: LHLO c
        """
        + EHLO
        + f"""
        S: 250 HELP
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: RCPT TO:<y@mx.example>
        C: DATA
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        E: RCPT <y@mx.example>
        S: 250 2.1.5 OK
        S: 354 End data with <CR><LF>.<CR><LF>
        C: {big}
        C: {big}
        C: .
        S: 552 5.3.4 message size exceeds the limit of 1000 octets
        S: 552 5.3.4 message size exceeds the limit of 1000 octets
        """,
        lmtp(),
    )


def test_recipient_limit() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<x@mx.example>
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        C: RCPT TO:<y@mx.example>
        E: RCPT <y@mx.example>
        S: 250 2.1.5 OK
        C: RCPT TO:<z@mx.example>
        S: 452 4.5.3 too many recipients
        """,
        smtp(max_recipients=2),
    )


def test_long_line_is_refused_and_skipped() -> None:
    long = "NOOP " + "y" * 300
    run(
        f"""
        S: 220 mx.example ESMTP mailkeep
        C: {long}
        S: 500 5.5.6 line too long
        C: NOOP
        S: 250 2.0.0 OK
        R: {"z" * 450}
        S: 500 5.5.6 line too long
        R: {"z" * 450}
        R: \\r\\nNOOP\\r\\n
        S: 250 2.0.0 OK
        """,
        smtp(),
    )


def test_too_many_errors_close_the_session() -> None:
    session = run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: BAD one
        S: 500 5.5.2 command not recognized: BAD
        C: BAD two
        C: NOOP
        S: 500 5.5.2 command not recognized: BAD
        S: 421 4.7.0 too many errors; closing
        E: CLOSED closed: too many errors; closing
        """,
        smtp(max_errors=2),
    )
    assert session.closed


def test_lmtp_does_not_count_refused_recipients_as_errors() -> None:
    rcpts = "\n".join(
        f"C: RCPT TO:<u{n}@mx.example>\nE: RCPT <u{n}@mx.example>\nS: 550 5.1.1 no such user"
        for n in range(4)
    )
    session = run(
        """
        S: 220 mx.example LMTP mailkeep
        C: LHLO c
        """
        + EHLO
        + """
        S: 250 HELP
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        """
        + rcpts,
        lmtp(max_errors=2),
    )
    assert not session.closed
    assert session.errors == 0


def test_auth_without_any_way_to_tls() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: AUTH PLAIN AHVzZXIAcGFzcw==
        S: 538 5.7.11 passwords need TLS, and this server has no certificate for STARTTLS
        """,
        submission(auth_clear=()),
    )


def test_timeout_says_421() -> None:
    session = Session(smtp())
    session.greeting()
    assert session.timeout() == b"421 4.4.2 mx.example timeout; closing\r\n"
    assert session.closed
    assert session.next_event() == ConnectionClosed("closed: mx.example timeout; closing")


# ------------------------------------------------------------------------ message data


def test_bare_lf_is_stored_as_crlf_and_only_crlf_dot_crlf_ends_the_data() -> None:
    run(
        r"""
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: DATA
        S: 250 mx.example
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        S: 354 End data with <CR><LF>.<CR><LF>
        R: one\ntwo\n.\nthree\r\n.\nfour\r\n
        R: .\r\n
        E: MESSAGE <a@b.example> -> <x@mx.example>
        D: b"one\r\ntwo\r\n\r\nthree\r\n\r\nfour\r\n"
        S: 250 2.0.0 OK
        """,
        smtp(),
    )


def test_nul_in_the_message_is_refused() -> None:
    run(
        r"""
        S: 220 mx.example LMTP mailkeep
        C: LHLO c
        """
        + EHLO
        + r"""
        S: 250 HELP
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: RCPT TO:<y@mx.example>
        C: DATA
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        E: RCPT <y@mx.example>
        S: 250 2.1.5 OK
        S: 354 End data with <CR><LF>.<CR><LF>
        R: a\x00b\r\n.\r\n
        S: 554 5.6.0 message contains NUL octets, which mail may not carry
        S: 554 5.6.0 message contains NUL octets, which mail may not carry
        """,
        lmtp(),
    )


def test_disconnect_during_data_delivers_nothing() -> None:
    session = run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: DATA
        S: 250 mx.example
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Subject: half
        R: a message cut sh
        EOF
        E: CLOSED client closed the connection during the message data (discarded)
        """,
        smtp(),
    )
    assert session.closed
    assert not session.in_transaction


def test_data_split_into_single_octets() -> None:
    session = Session(smtp())
    session.greeting()
    feed = b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@mx.example>\r\nDATA\r\n"
    body = b"..a\r\n.\r\r\nb\nc\r\n..\r\n.\r\n"
    events = []
    for octet in feed + body:
        session.receive_data(bytes([octet]))
        while not isinstance(event := session.next_event(), NeedData):
            events.append(event)
            match event:
                case Respond(replies):
                    for answer in replies:
                        session.send(answer)
                case _:
                    session.send(reply(250, "2.0.0", "OK"))
    (message,) = [e for e in events if isinstance(e, MessageReceived)]
    assert message.data == b".a\r\n\r\r\nb\r\nc\r\n.\r\n"


# ------------------------------------------------------------------------ BDAT


def test_bdat_chunks() -> None:
    run(
        r"""
        S: 220 mx.example ESMTP mailkeep
        C: EHLO c
        """
        + EHLO
        + r"""
        S: 250 HELP
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        C: RCPT TO:<x@mx.example>
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        R: BDAT 5\r\nab\r\n.BDAT 5 LAST\r\n
        S: 250 2.0.0 5 octets received
        R: c\nd\r\nQUIT\r\n
        E: MESSAGE <a@b.example> -> <x@mx.example>
        D: b"ab\r\n.c\r\nd\r\n"
        S: 250 2.0.0 OK
        S: 221 2.0.0 mx.example closing
        """,
        smtp(),
    )


def test_bdat_out_of_sequence_still_consumes_its_octets() -> None:
    run(
        r"""
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        R: BDAT 12\r\nRSET\r\nQUIT\r\n
        S: 503 5.5.1 need MAIL and RCPT before the message
        C: BDAT x
        S: 501 5.5.4 syntax: BDAT octets [LAST]
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        R: BDAT 3 LAST\r\nabc
        S: 554 5.5.1 no valid recipients
        C: RCPT TO:<x@mx.example>
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        R: BDAT 3\r\nabc
        S: 250 2.0.0 3 octets received
        C: DATA
        S: 503 5.5.1 DATA after BDAT: send BDAT LAST
        """,
        smtp(),
    )


def test_bdat_over_the_limit_ends_the_transaction() -> None:
    chunk = "x" * 600
    run(
        r"""
        S: 220 mx.example LMTP mailkeep
        C: LHLO c
        """
        + EHLO
        + rf"""
        S: 250 HELP
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: RCPT TO:<y@mx.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        E: RCPT <y@mx.example>
        S: 250 2.1.5 OK
        R: BDAT 600\r\n{chunk}BDAT 600\r\n{chunk}
        S: 250 2.0.0 600 octets received
        S: 552 5.3.4 message size exceeds the limit of 1000 octets
        R: BDAT 1 LAST\r\nx
        S: 503 5.5.1 need MAIL and RCPT before the message
        C: MAIL FROM:<a@b.example>
        C: RCPT TO:<x@mx.example>
        C: RCPT TO:<y@mx.example>
        R: BDAT 2 LAST\r\nx\n
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        E: RCPT <x@mx.example>
        S: 250 2.1.5 OK
        E: RCPT <y@mx.example>
        S: 250 2.1.5 OK
        E: MESSAGE <a@b.example> -> <x@mx.example> <y@mx.example>
        D: b"x\r\n"
        S: 250 2.0.0 <x@mx.example> delivered
        S: 452 4.2.2 <y@mx.example> full
        """,
        lmtp(),
    )


# ------------------------------------------------------------------------ STARTTLS


def test_starttls_drops_pipelined_cleartext_and_forgets_the_session() -> None:
    session = run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: EHLO c
        C: STARTTLS
        C: MAIL FROM:<injected@evil.example>
        """
        + EHLO
        + """
        S: 250-STARTTLS
        S: 250 HELP
        E: STARTTLS
        S: 220 2.0.0 Ready to start TLS
        C: MAIL FROM:<a@b.example>
        S: 503 5.5.1 send EHLO first
        C: EHLO c
        """
        + EHLO
        + """
        S: 250 HELP
        C: STARTTLS
        S: 503 5.5.1 TLS is already active
        """,
        smtp(starttls=True),
    )
    assert session.tls
    assert session.protocol == "ESMTPS"


def test_starttls_refusals() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: STARTTLS
        S: 503 5.5.1 send EHLO first
        C: HELO c
        S: 250 mx.example
        C: STARTTLS
        S: 454 4.7.0 TLS not available
        C: STARTTLS now
        S: 501 5.5.4 STARTTLS takes no arguments
        """,
        smtp(),
    )
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<a@b.example>
        E: MAIL <a@b.example>
        S: 250 2.1.0 sender OK
        C: STARTTLS
        S: 503 5.5.1 not permitted during a mail transaction
        """,
        smtp(starttls=True),
    )


# ------------------------------------------------------------------------ AUTH


def test_smtp_and_lmtp_offer_no_auth() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: EHLO c
        """
        + EHLO
        + """
        S: 250 HELP
        C: AUTH PLAIN AGEAYg==
        S: 502 5.5.1 AUTH is not available here; use the submission port
        """,
        smtp(),
    )


def test_submission_requires_auth_before_mail() -> None:
    session = run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: AUTH PLAIN AHVzZXIAcGFzcw==
        S: 503 5.5.1 send EHLO first
        C: HELO c
        S: 250 mx.example
        C: MAIL FROM:<user@mx.example>
        S: 530 5.7.0 Authentication required
        C: AUTH PLAIN AHVzZXIAcGFzcw==
        E: AUTH PLAIN b'\\x00user\\x00pass'
        S: 235 2.7.0 Authentication successful
        C: AUTH PLAIN AHVzZXIAcGFzcw==
        S: 503 5.5.1 already authenticated
        C: MAIL FROM:<user@mx.example>
        E: MAIL <user@mx.example>
        S: 250 2.1.0 sender OK
        """,
        submission(),
    )
    assert session.authenticated
    assert session.protocol == "SMTP"


def test_auth_with_challenges_and_cancel() -> None:
    session = run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: EHLO c
        """
        + EHLO
        + """
        S: 250-AUTH SCRAM-SHA-256 PLAIN LOGIN
        S: 250 HELP
        C: AUTH LOGIN
        E: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: dXNlcg==
        E: AUTH-RESPONSE b'user'
        S: 334 UGFzc3dvcmQ6
        C: *
        E: AUTH-CANCEL
        S: 501 5.0.0 Authentication cancelled
        C: AUTH PLAIN
        E: AUTH PLAIN
        S: 334
        C: not base64!
        S: 501 5.5.2 cannot decode the response
        C: AUTH PLAIN =
        E: AUTH PLAIN b''
        S: 535 5.7.8 Authentication credentials invalid
        C: AUTH PLAIN %%%
        S: 501 5.5.2 cannot decode the initial response
        C: AUTH CRAM-MD5
        S: 504 5.5.4 unrecognized authentication type; use SCRAM-SHA-256 PLAIN LOGIN
        C: AUTH LOGIN
        E: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: dXNlcg==
        E: AUTH-RESPONSE b'user'
        S: 334 UGFzc3dvcmQ6
        C: cGFzcw==
        E: AUTH-RESPONSE b'pass'
        S: 235 2.7.0 Authentication successful
        """,
        submission(),
    )
    assert session.authenticated
    assert session.protocol == "ESMTPA"


def test_no_auth_in_clear_text_where_passwords_are_refused() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: EHLO c
        """
        + EHLO
        + """
        S: 250-STARTTLS
        S: 250 HELP
        C: AUTH PLAIN AHVzZXIAcGFzcw==
        S: 530 5.7.0 Must issue a STARTTLS command first
        C: STARTTLS
        E: STARTTLS
        S: 220 2.0.0 Ready to start TLS
        C: EHLO c
        """
        + EHLO
        + """
        S: 250-AUTH SCRAM-SHA-256 PLAIN LOGIN
        S: 250 HELP
        """,
        submission(starttls=True, auth_clear=()),
    )


def test_failed_logins_close_the_session() -> None:
    run(
        """
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: AUTH PLAIN AHVzZXIAd3Jvbmc=
        E: AUTH PLAIN b'\\x00user\\x00wrong'
        S: 535 5.7.8 Authentication credentials invalid
        C: AUTH PLAIN AHVzZXIAd3Jvbmc=
        E: AUTH PLAIN b'\\x00user\\x00wrong'
        S: 535 5.7.8 Authentication credentials invalid
        S: 421 4.7.0 too many failed logins; closing
        """,
        submission(max_auth_failures=2),
    )


def test_auth_not_during_a_transaction_and_line_limit_ends_the_exchange() -> None:
    run(
        f"""
        S: 220 mx.example ESMTP mailkeep
        C: HELO c
        S: 250 mx.example
        C: AUTH LOGIN
        E: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: {"QUFB" * 60}
        S: 500 5.5.6 line too long
        C: NOOP
        S: 250 2.0.0 OK
        """,
        submission(),
    )


@pytest.mark.parametrize("mode", list(Mode))
def test_send_without_a_due_reply_is_a_caller_bug(mode: Mode) -> None:
    session = Session(Settings(mode, HOST))
    with pytest.raises(RuntimeError):
        session.send(reply(250, "2.0.0", "OK"))
    session.receive_data(b"NOOP\r\n")
    assert isinstance(session.next_event(), Respond)
    with pytest.raises(RuntimeError):
        session.next_event()
