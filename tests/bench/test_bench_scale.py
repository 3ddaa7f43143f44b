"""``python -m bench.scale`` on a small mailbox: the cloned rows make a mailbox the server
serves whole and consistent, and the measurements come back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from bench.scale import SEEDED, clone_rows, measure, seed
from bench.servers import Mailkeep

pytestmark = pytest.mark.slow


def test_cloned_mailbox_is_served_and_measured(tmp_path: Path) -> None:
    server = Mailkeep(tmp_path)
    total = SEEDED + 1_700
    try:
        server.reset()
        asyncio.run(seed(server.endpoints, SEEDED))
        server.stop()
        clone_rows(server.data / "store/mailkeep.sqlite3", total)
        # Reference counts, quota usage, UIDNEXT and HIGHESTMODSEQ agree with the rows.
        check = subprocess.run(
            [sys.executable, "-m", "mailkeep", "--data", str(server.data), "check"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "store is consistent" in check.stdout
        server.start()
        result = asyncio.run(measure(server, total))  # fails unless SELECT shows them all
    finally:
        server.stop()
    assert result["first_login_select_ms"] > 0
    assert result["login_select_ms"] > 0
    assert set(result) == {
        "first_login_select_ms",
        "login_select_ms",
        "mb_per_session",
        "mb_per_session_after_delivery",
    }
