"""Connect and authenticate an account: the one place that picks the login method.

``auth = "auto"`` takes the best SASL mechanism the server offers (SCRAM-SHA-256, then PLAIN,
then LOGIN) and falls back to IMAP LOGIN / POP3 USER+PASS when it offers none;
``auth = "login"`` always uses IMAP LOGIN / POP3 USER+PASS; any other value names the SASL
mechanism to use.
"""

from __future__ import annotations

from mailkeep.auth.sasl_client import choose_mechanism, client_mechanism
from mailkeep.client.accounts import Account
from mailkeep.client.errors import AuthenticationFailed
from mailkeep.client.imap import ImapClient
from mailkeep.client.pop3 import Pop3Client


def _mechanism(account: Account, offered: list[str]) -> str | None:
    wanted = account.auth.upper()
    if wanted == "AUTO":
        return choose_mechanism(offered)
    if wanted not in offered:
        raise AuthenticationFailed(
            f"{account.server} does not offer SASL {wanted} (offers: {', '.join(offered) or '-'})"
        )
    return wanted


async def open_imap(account: Account, password: str, spool_dir: str | None = None) -> ImapClient:
    client = await ImapClient.connect(account.endpoint(), spool_dir)
    try:
        offered = sorted(c[5:] for c in client.capabilities if c.startswith("AUTH="))
        name = None if account.auth.lower() == "login" else _mechanism(account, offered)
        if name is None:
            await client.login(account.user, password)
        else:
            await client.authenticate(client_mechanism(name, account.user, password))
    except BaseException:
        await client.close()
        raise
    return client


async def open_pop3(account: Account, password: str) -> Pop3Client:
    client = await Pop3Client.connect(account.endpoint())
    try:
        offered = [m.upper() for m in client.capabilities.get("SASL", [])]
        name = None if account.auth.lower() == "login" else _mechanism(account, offered)
        if name is None:
            await client.login(account.user, password)
        else:
            await client.authenticate(client_mechanism(name, account.user, password))
    except BaseException:
        await client.close()
        raise
    return client
