"""SEARCH FROM/TO/CC/BCC/SUBJECT: casefolded substring matching of the decoded fields, the
same on every backend whether an index narrows the candidates (SQLite's trigram index over
the search columns) or not, and nothing found once a message is gone."""

from __future__ import annotations

from mailkeep.store import query as q
from mailkeep.store.sqlstore import SqlStore

from ._support import msg

ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

MESSAGES = [
    # (subject, From)
    ("Quarterly report", "Alice Example <alice@example.org>"),
    ("Straße und Grüße", "Jürgen Groß <juergen@example.de>"),
    ('He said "hi" AND left', '"O\'Brien, Pat" <pat@example.ie>'),
    ("ΣΊΣΥΦΟΣ ζήτημα", "Σίσυφος <sisyfos@example.gr>"),
    ("NEAR(a b) {subject} : * ^start", "robot@example.com"),
    ("Re: Quarterly report", "Bob <bob@example.net>"),
    ("Kelvin \u212a scale", "Temp <temp@example.org>"),
]

NEEDLES = [
    "quarterly",
    "QUARTERLY REPORT",
    "rt",  # shorter than a trigram: no index
    "straße",
    "STRASSE",
    "grüße",
    '"hi" and',
    "o'brien, pat",
    "σίσυφ",
    "ΣΊΣΥΦΟΣ",
    "near(a b)",
    "{subject} :",
    "* ^st",
    "example.org",
    "@example.",
    "kelvin k",
    "nowhere-to-be-found",
]


async def test_subject_and_from_match_casefolded_substrings(store: SqlStore) -> None:
    account = await store.create_account("alice@example.org", ARGON, None)
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    appended = await store.append(
        inbox.id, [msg(subject, sender=sender) for subject, sender in MESSAGES]
    )
    uids = list(appended.uids)
    for needle in NEEDLES:
        folded = needle.casefold()
        for field, column in (("subject", 0), ("from", 1)):
            expected = [
                uid
                for uid, fields in zip(uids, MESSAGES, strict=True)
                if folded in fields[column].replace('"', "").casefold()
                or folded in fields[column].casefold()
            ]
            found = await store.search(inbox.id, q.HeaderContains(field, needle))
            assert found == expected, (field, needle)


async def test_expunged_and_collected_messages_are_not_found(store: SqlStore) -> None:
    account = await store.create_account("alice@example.org", ARGON, None)
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    uids = list((await store.append(inbox.id, [msg("Unique zebra"), msg("Other")])).uids)
    assert await store.search(inbox.id, q.HeaderContains("subject", "zebra")) == uids[:1]
    await store.remove(inbox.id, uids[:1])
    await store.collect_garbage()
    assert await store.search(inbox.id, q.HeaderContains("subject", "zebra")) == []
    again = (await store.append(inbox.id, [msg("Zebra again")])).uids
    assert await store.search(inbox.id, q.HeaderContains("subject", "zebra")) == list(again)
