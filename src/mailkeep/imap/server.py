"""asyncio glue: one ``Session`` per accepted connection (the only IMAP module that sees
the listener's ``Connection``; the session itself only knows the ``Transport`` protocol)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailkeep.imap import responses
from mailkeep.imap.fetchcache import FetchCache
from mailkeep.imap.session import Services, Session
from mailkeep.net.listeners import Connection, Handler

if TYPE_CHECKING:
    from mailkeep.app import App


def services(app: App) -> Services:
    return Services(
        store=app.store,
        auth=app.auth,
        limits=app.config.limits,
        hostname=app.config.hostname,
        admins=frozenset(address.lower() for address in app.config.admins),
        parser=app.delivery.parser,
        fetch_cache=FetchCache(app.config.limits.fetch_cache_octets),
    )


def handler(app: App, listener: str) -> Handler:
    """The connection handler for the ``imap`` (STARTTLS) and ``imaps`` (implicit TLS,
    already negotiated by the listener) listeners."""
    shared = services(app)

    async def serve(connection: Connection) -> None:
        await Session(shared, connection).run()

    return serve


def refusal(why: str) -> bytes:
    """The goodbye for a connection the limits refused (RFC 9051 7.1.5)."""
    return responses.bye(why)
