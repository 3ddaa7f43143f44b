"""The THREAD algorithms (RFC 5256 3) against the RFC's rules, one rule per test, as the
response would show them."""

from __future__ import annotations

from mailkeep.imap import responses, threads
from mailkeep.imap.threads import ThreadMessage


def msg(
    number: int,
    message_id: str = "",
    refs: tuple[str, ...] = (),
    *,
    in_reply_to: str = "",
    subject: str = "",
    date: int | None = None,
) -> ThreadMessage:
    base = subject.removeprefix("re: ").removeprefix("Re: ").lower()
    return ThreadMessage(
        number,
        message_id,
        in_reply_to,
        refs,
        base or f"unique subject {number}",
        threads.is_reply_or_forward(subject),
        number * 100 if date is None else date,
    )


def shown(roots: list[responses.ThreadNode]) -> bytes:
    return responses.thread(roots).removeprefix(b"* THREAD ").removesuffix(b"\r\n")


def refs(*messages: ThreadMessage) -> bytes:
    return shown(threads.references(messages))


def test_chain_and_siblings() -> None:
    a = msg(1, "<a@x>")
    b = msg(2, "<b@x>", ("<a@x>",))
    c = msg(3, "<c@x>", ("<a@x>", "<b@x>"))
    d = msg(4, "<d@x>", ("<a@x>",))
    assert refs(a, b, c) == b"(1 2 3)"
    assert refs(a, b, c, d) == b"(1 (2 3)(4))"
    assert refs(msg(5)) == b"(5)"


def test_missing_parent_dummy_kept_at_root_with_several_children() -> None:
    """(3) A dummy with several children at the top level stays (a thread whose first
    message is missing); with one child, the child takes its place."""
    b = msg(2, "<b@x>", ("<gone@x>",))
    c = msg(3, "<c@x>", ("<gone@x>",))
    assert refs(b, c) == b"((2)(3))"
    assert refs(b) == b"(2)"


def test_dummy_inside_a_thread_is_spliced_out() -> None:
    """(3) A missing message in the middle of a thread: its children are promoted."""
    a = msg(1, "<a@x>")
    c = msg(3, "<c@x>", ("<a@x>", "<gone@x>"))
    d = msg(4, "<d@x>", ("<a@x>", "<gone@x>"))
    assert refs(a, c, d) == b"(1 (3)(4))"


def test_in_reply_to_when_no_references() -> None:
    a = msg(1, "<a@x>")
    b = msg(2, "<b@x>", in_reply_to="<a@x>")
    assert refs(a, b) == b"(1 2)"


def test_references_win_over_a_truncated_earlier_parent() -> None:
    """(1.B) A message's own last reference is its parent, even if another message's
    References said otherwise; (1.A) links made earlier are not changed."""
    a = msg(1, "<a@x>")
    b = msg(2, "<b@x>", ("<a@x>",))
    c = msg(3, "<c@x>", ("<b@x>",))
    # D's References (truncated) claims C is a child of A.
    d = msg(4, "<d@x>", ("<a@x>", "<c@x>"))
    assert refs(a, b, c, d) == b"(1 2 3 4)"


def test_no_loops() -> None:
    """(1.B) B would become A's parent's child while being A's parent: the link that
    would close the loop is not made, so B (A's referenced parent) heads the thread."""
    a = msg(1, "<a@x>", ("<b@x>",))
    b = msg(2, "<b@x>", ("<a@x>",))
    assert refs(a, b) == b"(2 1)"
    assert refs(msg(1, "<a@x>", ("<a@x>",))) == b"(1)"


def test_duplicate_message_ids() -> None:
    """(1) The first message keeps a duplicated Message-ID; later ones get unique ids,
    so replies attach to the first."""
    a = msg(1, "<a@x>")
    a2 = msg(2, "<a@x>")
    r = msg(3, "<r@x>", ("<a@x>",))
    assert refs(a, a2, r) == b"(1 3)(2)"


def test_msg_id_quoting_is_normalized() -> None:
    a = msg(1, '<"01KF8JCEOCBS0045PS"@xxx.yyy.com>')
    b = msg(2, "<b@x>", ("<01KF8JCEOCBS0045PS@xxx.yyy.com>",))
    assert refs(a, b) == b"(1 2)"


def test_siblings_sorted_by_sent_date_then_order() -> None:
    """(4), (6): by sent date, not by mailbox order; equal dates keep mailbox order."""
    a = msg(1, "<a@x>", date=10)
    b = msg(2, "<b@x>", ("<a@x>",), date=50)
    c = msg(3, "<c@x>", ("<a@x>",), date=20)
    d = msg(4, "<d@x>", ("<a@x>",), date=20)
    assert refs(a, b, c, d) == b"(1 (3)(4)(2))"
    late = msg(5, "<e@x>", date=5)
    assert refs(a, b, c, d, late) == b"(5)(1 (3)(4)(2))"


def test_dummy_sorts_by_its_first_child() -> None:
    early = msg(1, "<a@x>", date=30)
    b = msg(2, "<b@x>", ("<gone@x>",), date=40)
    c = msg(3, "<c@x>", ("<gone@x>",), date=20)
    assert refs(early, b, c) == b"((3)(2))(1)"


def test_subject_merge_reply_joins_original() -> None:
    """(5.C) A reply with the same base subject becomes a child of the original."""
    a = msg(1, "<a@x>", subject="hello")
    b = msg(2, "<b@x>", subject="Re: hello")
    assert refs(a, b) == b"(1 2)"


def test_subject_merge_reply_joins_original_whatever_the_order() -> None:
    """(5.B) The table prefers the message that is not a reply, so the reply joins it
    even when the reply came first (the thread is then sorted by date, 6)."""
    reply = msg(1, "<b@x>", subject="Re: hello", date=10)
    original = msg(2, "<a@x>", subject="hello", date=20)
    assert refs(reply, original) == b"(2 1)"


def test_subject_merge_two_originals_get_a_dummy() -> None:
    a = msg(1, "<a@x>", subject="hello")
    b = msg(2, "<b@x>", subject="hello")
    assert refs(a, b) == b"((1)(2))"


def test_subject_merge_dummies_pool_children() -> None:
    """(5.C) Two dummies with one subject: the children become siblings."""
    b = msg(2, "<b@x>", ("<gone1@x>",), subject="Re: topic")
    c = msg(3, "<c@x>", ("<gone1@x>",), subject="Re: topic")
    d = msg(4, "<d@x>", ("<gone2@x>",), subject="Re: topic")
    e = msg(5, "<e@x>", ("<gone2@x>",), subject="Re: topic")
    assert refs(b, c, d, e) == b"((2)(3)(4)(5))"


def test_empty_subjects_are_not_merged() -> None:
    a = ThreadMessage(1, "<a@x>", "", (), "", False, 1)
    b = ThreadMessage(2, "<b@x>", "", (), "", False, 2)
    assert refs(a, b) == b"(1)(2)"


def test_deep_chain_does_not_recurse() -> None:
    chain = [msg(1, "<m1@x>")]
    for n in range(2, 5001):
        chain.append(msg(n, f"<m{n}@x>", (f"<m{n - 1}@x>",)))
    roots = threads.references(chain)
    assert len(roots) == 1
    assert shown(roots).startswith(b"(1 2 3 ")


def test_is_reply_or_forward() -> None:
    for subject in ("Re: x", "RE:x", "Fwd: x", "fw: x", "[list] Re: x", "x (fwd)", "[fwd: x]"):
        assert threads.is_reply_or_forward(subject), subject
    for subject in ("x", "Regarding x", "[list] x", "refund: x"):
        assert not threads.is_reply_or_forward(subject), subject


def test_ordered_subject() -> None:
    """RFC 5256 3, ORDEREDSUBJECT: groups by base subject, the first (by date) is the
    parent of the others; groups ordered by their first message's date."""
    messages = [
        ThreadMessage(1, "", "", (), "b", False, 10),
        ThreadMessage(2, "", "", (), "a", False, 20),
        ThreadMessage(3, "", "", (), "b", True, 30),
        ThreadMessage(4, "", "", (), "a", True, 15),
        ThreadMessage(5, "", "", (), "c", False, 5),
        ThreadMessage(6, "", "", (), "b", True, 40),
    ]
    assert shown(threads.ordered_subject(messages)) == b"(5)(1 (3)(6))(4 2)"
