"""Corpus access for the mail tests: messages under corpus/, generated ones, golden answers."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from .corpus_gen import GENERATED

HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "corpus"
GOLDEN_DIR = HERE / "golden"


def corpus_names() -> list[str]:
    return sorted(p.stem for p in CORPUS_DIR.glob("*.eml")) + list(GENERATED)


@cache
def corpus_message(name: str) -> bytes:
    if name in GENERATED:
        return GENERATED[name]()
    return (CORPUS_DIR / f"{name}.eml").read_bytes()


@cache
def golden(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    return data


def golden_bytes(value: str) -> bytes:
    """A recorded answer back to octets (recorded as latin-1 text)."""
    return value.encode("latin-1")


def same_as_golden(ours: bytes, recorded: str) -> bool:
    """Compare with a recorded answer, which is a digest when it was large."""
    if recorded.startswith("sha256:"):
        _, digest, length = recorded.split(":")
        return len(ours) == int(length) and hashlib.sha256(ours).hexdigest() == digest
    return ours == golden_bytes(recorded)
