"""Helpers shared by the wire-layer tests: run bytes through a Connection."""

from __future__ import annotations

from mailkeep.imap.commands import Command
from mailkeep.imap.connection import (
    CommandError,
    CommandReceived,
    ConnectionClosed,
    Event,
    NeedContinuation,
    NeedData,
)
from mailkeep.imap.reader import Limits


def events(data: bytes, limits: Limits | None = None, *, authenticated: bool = True) -> list[Event]:
    """Every event ``data`` produces, ``NeedData`` and continuations included, up to the
    point where more input is needed."""
    from mailkeep.imap.connection import Connection

    conn = Connection(limits or Limits(), authenticated=authenticated)
    conn.receive_data(data)
    out: list[Event] = []
    while True:
        event = conn.next_event()
        out.append(event)
        if isinstance(event, (NeedData, ConnectionClosed)):
            return out


def parse(line: bytes) -> Command:
    """The single command ``line`` + CRLF parses to; fails otherwise."""
    line += b"\r\n"
    found = [e for e in events(line) if not isinstance(e, NeedContinuation)]
    assert len(found) == 2, found
    event = found[0]
    assert isinstance(event, CommandReceived), event
    return event.command


def error(line: bytes) -> CommandError:
    """The CommandError ``line`` produces."""
    line += b"\r\n"
    found = [e for e in events(line) if not isinstance(e, NeedContinuation)]
    event = found[0]
    assert isinstance(event, CommandError), event
    return event
