"""A real SQLite store in a temporary directory, for the authentication service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailkeep.store.factory import open_store
from mailkeep.store.sqlstore import SqlStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store("sqlite:store", tmp_path, pool_size=2)
    try:
        yield opened
    finally:
        await opened.close()
