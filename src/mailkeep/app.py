"""One mailkeep server process: the services every protocol shares, and ``serve``.

``App`` is passed explicitly to each protocol's ``server.handler(app, listener)``; there
are no ambient globals. Each protocol server module provides::

    def handler(app: App, listener: str) -> Handler     # listener: "imap", "imaps", ...
    def refusal(why: str) -> bytes                       # goodbye when limits refuse
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from mailkeep.auth.service import Authenticator
from mailkeep.auth.throttle import Throttle
from mailkeep.config import LISTENER_NAMES, Config
from mailkeep.mail.parser import Parser, default_workers
from mailkeep.net.listeners import ConnectionGate, Limits, Listeners, ListenerSpec
from mailkeep.net.tls import TlsContextHolder
from mailkeep.smtp.delivery import Delivery
from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore

log = logging.getLogger("mailkeep")

# listener name → (protocol server module, implicit TLS)
PROTOCOLS: dict[str, tuple[str, bool]] = {
    "imap": ("mailkeep.imap.server", False),
    "imaps": ("mailkeep.imap.server", True),
    "pop3": ("mailkeep.pop3.server", False),
    "pop3s": ("mailkeep.pop3.server", True),
    "smtp": ("mailkeep.smtp.server", False),
    "submission": ("mailkeep.smtp.server", False),
    "submissions": ("mailkeep.smtp.server", True),
    "lmtp": ("mailkeep.smtp.server", False),
    "http": ("mailkeep.http.server", False),
}

MAINTENANCE_INTERVAL = 300.0


@dataclass
class App:
    config: Config
    store: SqlStore
    auth: Authenticator
    tls: TlsContextHolder | None
    delivery: Delivery
    gate: ConnectionGate = field(default_factory=lambda: ConnectionGate(Limits()))

    @classmethod
    async def open(cls, config: Config) -> App:
        store = await open_store(
            config.store.url, config.data_dir, pool_size=config.store.pool_size
        )
        tls = _tls_holder(config)
        domains = config.domains
        default_domain = domains[0] if len(domains) == 1 else None
        auth = Authenticator(
            store,
            config.auth,
            Throttle(config.auth.failure_delay),
            default_domain=default_domain,
        )
        gate = ConnectionGate(
            Limits(config.limits.connections_per_address, config.limits.connections_total)
        )
        workers = config.parse_workers if config.parse_workers >= 0 else default_workers()
        limits = config.limits
        parser = Parser(
            workers,
            max_parts=limits.max_mime_parts,
            max_depth=limits.max_mime_depth,
            words=store.engine.dialect.wants_words,
        )
        delivery = Delivery(store, config.hostname, domains, parser)
        return cls(config, store, auth, tls, delivery, gate)

    async def close(self) -> None:
        await self.delivery.parser.close()
        await self.store.close()


def _tls_holder(config: Config) -> TlsContextHolder | None:
    cert, key = config.path(config.tls.cert), config.path(config.tls.key)
    if not cert.exists() or not key.exists():
        log.warning("no TLS certificate at %s: STARTTLS and implicit TLS are off", cert)
        return None
    return TlsContextHolder(cert, key, config.tls.min_version)


def listener_specs(app: App, addresses: dict[str, tuple[str, int]]) -> list[ListenerSpec]:
    """A spec per enabled listener whose protocol is built into this mailkeep."""
    specs = []
    for name in LISTENER_NAMES:
        if name not in addresses:
            continue
        module_name, implicit_tls = PROTOCOLS[name]
        module = _protocol_module(module_name)
        if module is None:
            log.warning("%s: this mailkeep has no %s server yet; listener off", name, module_name)
            continue
        host, port = addresses[name]
        specs.append(
            ListenerSpec(
                name,
                host,
                port,
                module.handler(app, name),
                implicit_tls=implicit_tls,
                refuse=module.refusal,
            )
        )
    return specs


def _protocol_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


async def serve(
    app: App,
    addresses: dict[str, tuple[str, int]],
    *,
    ready: Callable[[list[tuple[str, str, int]]], None] = lambda bound: None,
    grace: float = 5.0,
) -> None:
    """Run the listeners until SIGTERM or SIGINT; SIGHUP reloads the TLS certificate.
    On stopping, sessions get ``grace`` seconds to finish, then a goodbye
    (``* BYE``, ``-ERR``, ``421``) and the connection is closed."""
    tls = app.tls
    specs = listener_specs(app, addresses)
    if not specs:
        raise OSError("no listener is enabled: nothing to serve")
    listeners = Listeners(
        specs,
        gate=app.gate,
        tls_context=None if tls is None else (lambda: tls.context),
        proxy_protocol=app.config.listeners.proxy_protocol,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers first: whoever reads "ready" may signal at once.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if tls is not None:
        loop.add_signal_handler(signal.SIGHUP, tls.reload)
    maintenance: asyncio.Task[None] | None = None
    try:
        ready(await listeners.start())
        maintenance = asyncio.create_task(_maintain(app))
        await stop.wait()
        log.info("shutting down")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if maintenance is not None:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
        await listeners.stop(grace)


async def _maintain(app: App) -> None:
    """Background upkeep: collect unreferenced contents, trim the expunge log, merge
    flag-change logs, expire messages under POP3 retention policies."""
    from mailkeep.pop3.retention import expire

    while True:
        try:
            collected = await app.store.collect_garbage()
            while collected:
                collected = await app.store.collect_garbage()
            await app.store.trim_expunge_log(app.config.store.expunge_log_days)
            await app.store.compact_flag_log()
            await expire(app.store, app.config.pop3)
        except Exception:
            log.exception("maintenance failed; will retry")
        await asyncio.sleep(MAINTENANCE_INTERVAL)
