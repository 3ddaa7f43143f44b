"""The benchmark's correctness checks, run once per server and corpus outside any measurement
(and by the test suite on a small corpus): the server must hold exactly the corpus, find
exactly the planted needles, and return every message byte for byte over IMAP and POP3."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.corpus import NEEDLES, Corpus
from bench.proto.imap import ImapClient, quoted
from bench.proto.pop3 import Pop3Client, unstuff
from bench.servers import Endpoints


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def imap_checks(endpoints: Endpoints, corpus: Corpus, download: bool = True) -> list[Check]:
    e = endpoints
    out: list[Check] = []
    client = await ImapClient.connect(e.host, e.imap)
    await client.login(e.user, e.password)
    box = await client.select("INBOX")
    out.append(Check("imap-count", box.exists == len(corpus), f"EXISTS {box.exists}"))
    expected = corpus.expected_counts()
    for name, needle in NEEDLES.items():
        if needle.charset is None:
            found = await client.search(needle.key.encode() + b" " + quoted(needle.text))
        else:
            criteria = f"CHARSET {needle.charset} {needle.key}".encode()
            found = await client.search(criteria, needle.text.encode())
        out.append(
            Check(
                f"search-{name}",
                len(found) == expected[name],
                f"{len(found)} found, {expected[name]} planted",
            )
        )
    if download:
        out.append(await _download(client, corpus, [], set()))
    await client.logout()
    return out


async def _download(client: ImapClient, corpus: Corpus, errors: list[str], seen: set[int]) -> Check:
    verify = _verifier(corpus, errors, seen)

    def on(line: bytes, literals: list[bytes]) -> None:
        if b" FETCH " in line:
            if len(literals) != 1:
                errors.append(f"{line[:40]!r}: {len(literals)} literals")
            else:
                verify(literals[0])

    await client.command(b"FETCH 1:* BODY.PEEK[]", on)
    return _summary("imap-download", corpus, errors, seen)


def _verifier(corpus: Corpus, errors: list[str], seen: set[int]) -> Callable[[bytes], None]:
    def verify(message: bytes) -> None:
        try:
            i = corpus.check(message)
        except ValueError as e:
            errors.append(str(e))
            return
        if i in seen:
            errors.append(f"message {i} twice")
        seen.add(i)

    return verify


def _summary(name: str, corpus: Corpus, errors: list[str], seen: set[int]) -> Check:
    missing = len(corpus) - len(seen)
    ok = not errors and missing == 0
    detail = f"{len(seen)} verified, {missing} missing, {len(errors)} wrong"
    if errors:
        detail += f" (first: {errors[0]})"
    return Check(name, ok, detail)


async def pop3_checks(endpoints: Endpoints, corpus: Corpus, download: bool = True) -> list[Check]:
    e = endpoints
    client = await Pop3Client.connect(e.host, e.pop3)
    await client.login(e.user, e.password)
    listing = await client.uidl()
    uids = {uid for _, uid in listing}
    out = [
        Check(
            "pop3-uidl",
            len(listing) == len(corpus) and len(uids) == len(listing),
            f"{len(listing)} messages, {len(uids)} distinct UIDs",
        )
    ]
    if download:
        errors: list[str] = []
        seen: set[int] = set()
        verify = _verifier(corpus, errors, seen)
        await client.many(
            [b"RETR %d" % n for n, _ in listing], lambda _, body: verify(unstuff(body))
        )
        out.append(_summary("pop3-retr", corpus, errors, seen))
    await client.quit()
    return out


async def run_checks(endpoints: Endpoints, corpus: Corpus, download: bool = True) -> list[Check]:
    """All checks; ``download`` False skips the byte-for-byte downloads (huge mailboxes)."""
    return [
        *await imap_checks(endpoints, corpus, download),
        *await pop3_checks(endpoints, corpus, download),
    ]
