"""The private Dovecot fixture itself works (so failures elsewhere are about our client)."""

from __future__ import annotations

import imaplib
import poplib

from .conftest import MailUser


def test_imap_login_and_lmtp_delivery(mail_user: MailUser) -> None:
    mail_user.deliver(b"Subject: hi\r\n\r\nbody\r\n")
    imap = imaplib.IMAP4("127.0.0.1", mail_user.server.imap_port)
    try:
        imap.login(mail_user.name, mail_user.password)
        typ, data = imap.select("INBOX")
        assert typ == "OK"
        assert data == [b"1"]
    finally:
        imap.logout()


def test_pop3_login(mail_user: MailUser) -> None:
    mail_user.deliver(b"Subject: hi\r\n\r\nbody\r\n")
    pop = poplib.POP3("127.0.0.1", mail_user.server.pop3_port)
    try:
        pop.user(mail_user.name)
        pop.pass_(mail_user.password)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()
