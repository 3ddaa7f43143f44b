"""``Store.thread_headers``: what THREAD needs, read the same way on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

from mailkeep.store.sqlstore import SqlStore

from ._support import msg


async def test_thread_headers(store: SqlStore) -> None:
    account = await store.create_account("t@example.org", "x", None)
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    arrived = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    await store.append(
        inbox.id,
        [
            msg("Hello", message_id="<a@x>", date="Mon, 01 Jan 2024 10:00:00 +0100"),
            msg(
                "Re: Hello",
                message_id="<b@x>",
                in_reply_to="<a@x>",
                references="<z@x> <a@x>",
                date=None,
                internaldate=arrived,
            ),
            msg("third"),
        ],
    )
    rows = await store.thread_headers(inbox.id, [1, 2, 7])
    assert [r.uid for r in rows] == [1, 2]
    first, second = rows
    assert (first.message_id, first.in_reply_to, first.references) == ("<a@x>", "", ())
    assert first.base_subject == "hello"
    assert first.date == int(datetime(2024, 1, 1, 9, 0, tzinfo=UTC).timestamp())
    assert second.references == ("<z@x>", "<a@x>")
    assert second.in_reply_to == "<a@x>"
    assert second.subject == "re: hello"
    assert second.base_subject == "hello"
    assert second.date == int(arrived.timestamp())  # no Date: the internal date
    assert await store.thread_headers(inbox.id, []) == []
    many = await store.thread_headers(inbox.id, [*range(1, 200, 2), 2])
    assert [r.uid for r in many] == [1, 2, 3]
