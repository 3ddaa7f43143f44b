"""Fixtures for the reliability tests: a ``mailkeep serve`` subprocess per test, always
reaped (SIGTERM, then SIGKILL) whatever the test did to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import pytest

from .support import PROTOCOLS, ServerProcess, make_data, start_server

USERS = ("alice@example.org", "bob@example.org")

StartServer = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await launch(limits={...}, auth={...}, listeners=(...))``: a data directory with
    USERS and a server on it."""
    started: list[ServerProcess] = []

    async def start(
        *,
        listeners: Iterable[str] = PROTOCOLS,
        limits: Mapping[str, object] | None = None,
        auth: Mapping[str, object] | None = None,
        data: Path | None = None,
        users: Iterable[str] = USERS,
        sections: Mapping[str, Mapping[str, object]] | None = None,
        **top: object,
    ) -> ServerProcess:
        data = data or tmp_path / "data"
        if not (data / "mailkeep.toml").exists():
            await make_data(data, users, limits=limits, auth=auth, top=top, sections=sections)
        server = await start_server(data, listeners)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            await server.stop()


@pytest.fixture
async def server(launch: StartServer) -> ServerProcess:
    return await launch()
