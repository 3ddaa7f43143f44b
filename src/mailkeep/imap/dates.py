"""IMAP dates: INTERNALDATE/APPEND ``date-time`` and SEARCH ``date`` (RFC 9051 9).

::

    date-time      = DQUOTE date-day-fixed "-" date-month "-" date-year
                     SP time SP zone DQUOTE
    date-day-fixed = (SP DIGIT) / 2DIGIT
    date-month     = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" /
                     "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
    time           = 2DIGIT ":" 2DIGIT ":" 2DIGIT
    zone           = ("+" / "-") 4DIGIT
    date           = date-text / DQUOTE date-text DQUOTE
    date-text      = date-day "-" date-month "-" date-year
    date-day       = 1*2DIGIT

Month names are matched case-insensitively (they are atoms, RFC 9051 9 note 1). Parsing is
slightly liberal in the day of a ``date-time`` (one digit without the space is accepted,
as Dovecot and Cyrus do); formatting is exact.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta, timezone

MONTHS = (
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
)
_MONTH_NUMBER = {name.lower(): i + 1 for i, name in enumerate(MONTHS)}

DATE_TIME = re.compile(
    rb'"([ 0-9]?[0-9])-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
DATE_TEXT = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
SEARCH_DATE = re.compile(
    rb'"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})"|([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})'
)


class DateError(ValueError):
    """A date that matches the syntax but does not exist (``31-Feb-2024``)."""


def date_from_match(match: re.Match[bytes]) -> date:
    """The ``date`` of a ``SEARCH_DATE`` match."""
    day, month, year = match.group(1, 2, 3) if match.group(1) else match.group(4, 5, 6)
    return _date(day, month, year)


def _date(day: bytes, month: bytes, year: bytes) -> date:
    number = _MONTH_NUMBER.get(month.lower())
    if number is None:
        raise DateError(f"unknown month {month.decode('ascii', 'replace')!r}")
    try:
        return date(int(year), number, int(day))
    except ValueError as exc:
        raise DateError(f"invalid date: {exc}") from None


def datetime_from_match(match: re.Match[bytes]) -> datetime:
    """The aware ``datetime`` of a ``DATE_TIME`` match."""
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    d = _date(day.strip(), month, year)
    offset = timedelta(hours=int(zh), minutes=int(zm))
    if offset >= timedelta(hours=24):
        raise DateError("time zone offset out of range")
    try:
        return datetime(
            d.year,
            d.month,
            d.day,
            int(hh),
            int(mm),
            int(ss),
            tzinfo=timezone(-offset if sign == b"-" else offset),
        )
    except ValueError as exc:
        raise DateError(f"invalid time: {exc}") from None


def parse_date_time(value: bytes) -> datetime:
    """Parse a complete quoted ``date-time`` such as ``"17-Jul-1996 02:44:25 -0700"``."""
    match = DATE_TIME.fullmatch(value)
    if match is None:
        raise DateError('expected date-time like "17-Jul-1996 02:44:25 -0700"')
    return datetime_from_match(match)


def format_date_time(moment: datetime) -> bytes:
    """``moment`` as a quoted ``date-time``, in its own offset (UTC if naive).

    FETCH INTERNALDATE formats one per message of a folder: the day and zone parts come
    from small caches (a folder's dates share days and offsets)."""
    return b"%s%02d:%02d:%02d%s" % (
        _day(moment.year, moment.month, moment.day),
        moment.hour,
        moment.minute,
        moment.second,
        _zone(moment.utcoffset()),
    )


@functools.lru_cache(maxsize=4096)
def _day(year: int, month: int, day: int) -> bytes:
    """``DQUOTE date-day-fixed "-" date-month "-" date-year SP``"""
    return b'"%2d-%s-%04d ' % (day, MONTHS[month - 1], year)


@functools.lru_cache(maxsize=256)
def _zone(offset: timedelta | None) -> bytes:
    """``SP zone DQUOTE``"""
    minutes = int((offset or timedelta(0)).total_seconds()) // 60
    sign = b"-" if minutes < 0 else b"+"
    minutes = abs(minutes)
    return b' %s%02d%02d"' % (sign, minutes // 60, minutes % 60)


def format_date(day: date) -> bytes:
    """A search ``date-text`` such as ``1-Feb-1994`` (used by the command serializer)."""
    return b"%d-%s-%04d" % (day.day, MONTHS[day.month - 1], day.year)
