"""THREAD algorithms of RFC 5256 section 3, as pure functions over stored header data.

``references`` follows the REFERENCES algorithm step by step (the step numbers in the
comments are the RFC's); ``ordered_subject`` is ORDEREDSUBJECT. Both take the messages in
mailbox order (ascending sequence number, which is also ascending UID) and return the
threads as ``responses.ThreadNode`` trees, ``number`` None for a dummy parent.

Sent dates (RFC 5256 2.2) come from the store already in seconds since the epoch, with
the internal date standing in for a missing Date header; ties are broken by mailbox
order. Base subjects come from the store casefolded, which is the i;unicode-casemap
comparison the RFC asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailkeep.imap.responses import ThreadNode

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message as threading sees it; ``number`` is what the response shows (its
    sequence number, or UID for UID THREAD)."""

    number: int
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    base_subject: str
    reply: bool
    """The subject is a reply or forward (RFC 5256 5.B, 5.C)."""
    date: int


_REPLY_LEADER = re.compile(r"\s*(?:\[[^\[\]]*\]\s*)*(?:re|fwd?)\s*(?:\[[^\[\]]*\]\s*)?:", re.I)


def is_reply_or_forward(subject: str) -> bool:
    """Whether base subject extraction (RFC 5256 2.1) would remove a reply or forward
    marker: a ``Re:``/``Fw:``/``Fwd:`` leader, a ``(fwd)`` trailer or a ``[fwd: ...]``
    wrapper."""
    text = subject.strip()
    lowered = text.lower()
    return (
        _REPLY_LEADER.match(text) is not None
        or lowered.endswith("(fwd)")
        or (lowered.startswith("[fwd:") and lowered.endswith("]"))
    )


def normalize_msg_id(value: str) -> str:
    """RFC 5256 3: msg-ids compare after removing quoting, so ``<"a b"@x>`` and
    ``<a b@x>`` are the same; angle brackets and surrounding space go too."""
    return value.strip().strip("<>").replace('"', "").replace("\\", "")


class _Container:
    __slots__ = ("children", "message", "parent")

    def __init__(self, message: ThreadMessage | None = None) -> None:
        self.message = message
        self.parent: _Container | None = None
        self.children: list[_Container] = []

    def key(self) -> tuple[int, int]:
        """Sort key: sent date then mailbox order; a dummy sorts as its first child."""
        if self.message is not None:
            return self.message.date, self.message.number
        return self.children[0].key() if self.children else (0, 0)

    def subject(self) -> str:
        if self.message is not None:
            return self.message.base_subject
        return self.children[0].subject() if self.children else ""

    def is_reply(self) -> bool:
        return self.message is not None and self.message.reply


def _is_descendant(node: _Container, ancestor: _Container) -> bool:
    current: _Container | None = node
    while current is not None:
        if current is ancestor:
            return True
        current = current.parent
    return False


def _link(parent: _Container, child: _Container) -> None:
    child.parent = parent
    parent.children.append(child)


def _unlink(child: _Container) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
        child.parent = None


def references(messages: Sequence[ThreadMessage]) -> list[ThreadNode]:
    """RFC 5256 3, REFERENCES."""
    by_id: dict[str, _Container] = {}
    containers: list[_Container] = []

    def container_for(msg_id: str) -> _Container:
        found = by_id.get(msg_id)
        if found is None:
            found = by_id[msg_id] = _Container()
            containers.append(found)
        return found

    for message in messages:
        # (1) A message without a Message-ID, or whose Message-ID an earlier message
        # already has, gets a unique one: a container that nothing can refer to.
        msg_id = normalize_msg_id(message.message_id)
        if msg_id and (msg_id not in by_id or by_id[msg_id].message is None):
            current = container_for(msg_id)
            current.message = message
        else:
            current = _Container(message)
            containers.append(current)
        refs = [r for r in (normalize_msg_id(x) for x in message.references) if r]
        if not refs and normalize_msg_id(message.in_reply_to):
            refs = [normalize_msg_id(message.in_reply_to)]
        # (1.A) Link the references together as parent/child, first to last, keeping
        # links that already exist and never making a loop.
        previous: _Container | None = None
        for ref in refs:
            node = container_for(ref)
            if (
                previous is not None
                and node.parent is None
                and node is not previous
                and not _is_descendant(previous, node)
            ):
                _link(previous, node)
            previous = node
        # (1.B) The last reference is this message's parent, replacing any parent an
        # earlier (truncated) References gave it, unless that would make a loop.
        _unlink(current)
        if previous is not None and not _is_descendant(previous, current):
            _link(previous, current)

    # (2) The messages without a parent are the first messages of the threads.
    roots = [c for c in containers if c.parent is None]
    # (3) Prune dummies.
    roots = _prune(roots)
    for node in roots:
        node.parent = None
    # (4) Sort the top level by sent date, a dummy by its first child's.
    for node in roots:
        if node.message is None:
            node.children.sort(key=_Container.key)
    roots.sort(key=_Container.key)
    # (5) Gather threads with the same base subject.
    roots = _merge_subjects(roots)
    # (6) Sort every set of siblings, the deepest first.
    _sort_tree(roots)
    return _nodes(roots)


def _preorder(roots: list[_Container]) -> list[_Container]:
    """Every container below ``roots`` (included), parents before children: walking it
    backwards visits children first without recursion (a hostile mailbox can hold a reply
    chain thousands of messages deep)."""
    out: list[_Container] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def _prune(roots: list[_Container]) -> list[_Container]:
    """(3) A dummy without children goes; a dummy with children goes and its children
    take its place, unless that would put several children at the top level."""

    def pruned(nodes: list[_Container], *, at_root: bool) -> list[_Container]:
        out: list[_Container] = []
        for node in nodes:
            if node.message is None:
                if not node.children:
                    continue
                if not at_root or len(node.children) == 1:
                    out.extend(node.children)
                    continue
            out.append(node)
        return out

    for node in reversed(_preorder(roots)):
        node.children = pruned(node.children, at_root=False)
        for child in node.children:
            child.parent = node
    return pruned(roots, at_root=True)


def _merge_subjects(roots: list[_Container]) -> list[_Container]:
    # (5.A, 5.B) One thread per base subject: a dummy is preferred, then a message that
    # is not a reply or forward.
    table: dict[str, _Container] = {}
    for node in roots:
        subject = node.subject()
        if not subject:
            continue
        held = table.get(subject)
        if held is None or (
            held.message is not None
            and (node.message is None or (held.is_reply() and not node.is_reply()))
        ):
            table[subject] = node
    # (5.C) Merge the other threads with that subject into it.
    order = list(roots)
    gone: set[int] = set()
    for node in roots:
        subject = node.subject()
        if not subject:
            continue
        held = table[subject]
        if held is node:
            continue
        if held.message is None and node.message is None:
            for child in node.children:
                _link(held, child)
            node.children = []
            gone.add(id(node))
        elif held.message is None or (node.is_reply() and not held.is_reply()):
            _link(held, node)
            gone.add(id(node))
        else:
            dummy = _Container()
            order[order.index(held)] = dummy
            _link(dummy, held)
            _link(dummy, node)
            table[subject] = dummy
            gone.add(id(node))
    return [node for node in order if id(node) not in gone]


def _sort_tree(roots: list[_Container]) -> None:
    for node in reversed(_preorder(roots)):
        node.children.sort(key=_Container.key)
    roots.sort(key=_Container.key)


def _nodes(roots: list[_Container]) -> list[ThreadNode]:
    built: dict[int, ThreadNode] = {}
    for node in reversed(_preorder(roots)):
        number = node.message.number if node.message is not None else None
        built[id(node)] = ThreadNode(number, tuple(built[id(c)] for c in node.children))
    return [built[id(c)] for c in roots]


def ordered_subject(messages: Iterable[ThreadMessage]) -> list[ThreadNode]:
    """RFC 5256 3, ORDEREDSUBJECT: sort by base subject then sent date; each run of one
    base subject is a thread whose first message is the parent of all the others
    (siblings); threads are ordered by their first message's sent date."""
    ordered = sorted(messages, key=lambda m: (m.base_subject, m.date, m.number))
    groups: list[list[ThreadMessage]] = []
    for message in ordered:
        if groups and groups[-1][0].base_subject == message.base_subject:
            groups[-1].append(message)
        else:
            groups.append([message])
    groups.sort(key=lambda g: (g[0].date, g[0].number))
    return [ThreadNode(g[0].number, tuple(ThreadNode(m.number) for m in g[1:])) for g in groups]
