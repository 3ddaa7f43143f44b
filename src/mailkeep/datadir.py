"""Create and populate a data directory (``mailkeep init``, tests, ``make run``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailkeep.config import DEFAULT_CONFIG_TOML, Config, load, parse_size
from mailkeep.store.api import Account, Store

DEMO_ADDRESS = "demo@localhost"
DEMO_PASSWORD = "demo"


async def initialise(
    data: Path,
    config_file: Path | None = None,
    *,
    hostname: str | None = None,
    demo: bool = False,
) -> list[str]:
    """Make ``data`` a working data directory; keep what exists. Returns what was done."""
    from mailkeep.store.factory import open_store

    done = await asyncio.to_thread(_prepare_files, data, config_file, hostname)
    config = load(data, config_file)
    store = await open_store(config.store.url, data, pool_size=1)
    try:
        if demo and await store.get_account(DEMO_ADDRESS) is None:
            await add_account(store, config, DEMO_ADDRESS, DEMO_PASSWORD, None)
            done.append(f"created the demo account {DEMO_ADDRESS} with password '{DEMO_PASSWORD}'")
    finally:
        await store.close()
    return done


def _prepare_files(data: Path, config_file: Path | None, hostname: str | None) -> list[str]:
    """The directory, the commented config and the self-signed certificate."""
    from mailkeep.net.tls import ensure_self_signed

    done = []
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    config_path = config_file or data / "mailkeep.toml"
    if not config_path.exists():
        text = DEFAULT_CONFIG_TOML
        if hostname:
            text = text.replace('# hostname = "mail.example.com"', f'hostname = "{hostname}"', 1)
        config_path.write_text(text, encoding="utf-8")
        done.append(f"wrote {config_path}")
    config = load(data, config_file)
    cert, key = config.path(config.tls.cert), config.path(config.tls.key)
    name = hostname or config.hostname
    if ensure_self_signed(cert, key, name):
        done.append(f"created a self-signed certificate for {name}: {cert}")
    return done


async def add_account(
    store: Store, config: Config, address: str, password: str, quota: str | None
) -> Account:
    """Create an account with its argon2id hash and SCRAM keys (so SCRAM works at once)."""
    from mailkeep.auth.passwords import hash_password, scram_stored

    quota_bytes = parse_size(quota if quota is not None else config.default_quota)
    password_hash, scram = await asyncio.gather(
        asyncio.to_thread(hash_password, password), asyncio.to_thread(scram_stored, password)
    )
    return await store.create_account(address, password_hash, scram, quota_bytes=quota_bytes)
