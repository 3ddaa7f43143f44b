"""What a fetch or sync run did: counted as it goes, shown as one line or as JSON, and
progress callbacks the CLI turns into a rich progress bar."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class RunReport:
    new: int = 0
    """Messages downloaded (fetch) or copied in either direction (sync)."""
    changed: int = 0
    """Messages whose flags changed (either side), or header-only messages completed."""
    deleted: int = 0
    """Messages deleted (either side)."""
    bytes: int = 0
    """Message octets transferred."""
    folders: int = 0
    """Folders created, renamed or deleted (sync)."""
    skipped: list[str] = field(default_factory=list)
    """What could not be done or was refused, with the reason (partial success: exit 8)."""
    notes: list[str] = field(default_factory=list)
    """Decisions worth telling (a folder recreated, UIDs renumbered by the server)."""
    dry_run: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        verb = "would be: " if self.dry_run else ""
        line = (
            f"{verb}{self.new} new, {self.changed} changed, {self.deleted} deleted, "
            f"{_human(self.bytes)}"
        )
        if self.folders:
            line += f", {self.folders} folder changes"
        if self.skipped:
            line += f", {len(self.skipped)} skipped"
        return line

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, other: RunReport) -> None:
        self.new += other.new
        self.changed += other.changed
        self.deleted += other.deleted
        self.bytes += other.bytes
        self.folders += other.folders
        self.skipped.extend(other.skipped)
        self.notes.extend(other.notes)


def _human(octets: int) -> str:
    value = float(octets)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{octets} B"


class Progress(Protocol):
    def start(self, label: str, messages: int, octets: int) -> None: ...

    def advance(self, messages: int, octets: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, label: str, messages: int, octets: int) -> None:
        pass

    def advance(self, messages: int, octets: int) -> None:
        pass

    def finish(self) -> None:
        pass
