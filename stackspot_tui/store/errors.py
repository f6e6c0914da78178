"""History errors: one-line messages that say which file and what to do."""

from __future__ import annotations

from pathlib import Path


class HistoryError(Exception):
    """Base class for history problems."""


class HistoryCorruptError(HistoryError):
    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(
            f"history file {path} is damaged ({detail}); it was left untouched: "
            "`stackspot-tui repair` moves damaged files aside and rebuilds what it can"
        )


class HistoryVersionError(HistoryError):
    def __init__(self, path: Path, found: object, supported: int) -> None:
        self.path = path
        super().__init__(
            f"history at {path.parent} has schema version {found}, newer than this stackspot-tui "
            f"supports ({supported}); upgrade stackspot-tui or use another STACKSPOT_TUI_DATA_DIR"
        )


class UnknownConversationError(HistoryError):
    def __init__(self, text: str) -> None:
        super().__init__(f"no conversation with id {text!r} (see `stackspot-tui conversations`)")


class AmbiguousConversationError(HistoryError):
    def __init__(self, text: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:5]) + (" …" if len(candidates) > 5 else "")
        super().__init__(f"id prefix {text!r} matches several conversations: {shown}; type more of it")


class UnknownTurnError(HistoryError):
    def __init__(self, conversation: str, seq: int) -> None:
        super().__init__(f"conversation {conversation} has no turn {seq + 1}")


class HistoryLockTimeout(HistoryError):
    def __init__(self, path: Path, seconds: float) -> None:
        super().__init__(f"another stackspot-tui process held the history lock {path} for over {seconds:g} s")
