"""History errors: one-line messages that say which file and what to do."""

from __future__ import annotations

from pathlib import Path

REPAIR_HINT = "`stackspot-tui repair` sets damaged files aside and rebuilds what it can"


class HistoryError(Exception):
    """Base class for history problems."""


class HistoryCorruptError(HistoryError):
    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"history file {path} is damaged ({detail}); it was left untouched: {REPAIR_HINT}")


class HistoryVersionError(HistoryError):
    def __init__(self, path: Path, found: object, supported: int) -> None:
        self.path = path
        super().__init__(
            f"history at {path.parent} has schema version {found}, newer than this stackspot-tui "
            f"supports ({supported}); upgrade stackspot-tui or use another STACKSPOT_TUI_DATA_DIR"
        )


class HistoryLocationError(HistoryError):
    """The history directory itself cannot be used (it is a file, say): a setting to fix."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        super().__init__(f"cannot keep the history in {path}: {detail}; check --data-dir or STACKSPOT_TUI_DATA_DIR")


class HistoryAccessError(HistoryError):
    """The operating system refused to read or write a history file."""

    def __init__(self, path: Path, action: str, exc: OSError) -> None:
        self.path = path
        self.errno = exc.errno
        reason = exc.strerror or str(exc)
        hint = " (is the history owned by another user?)" if isinstance(exc, PermissionError) else ""
        super().__init__(f"cannot {action} history file {path}: {reason}{hint}")


class HistoryWriteError(HistoryAccessError):
    """A write failed (disk full, read-only, ...); nothing was half-written."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(path, "write", exc)


class HistoryReadOnlyError(HistoryError):
    def __init__(self, root: Path, exc: OSError) -> None:
        self.path = root
        super().__init__(
            f"the history at {root} is read-only ({exc.strerror or exc}): "
            "reading commands work, this one needs to write"
        )


class UnknownConversationError(HistoryError):
    def __init__(self, text: str) -> None:
        self.text = text  # the id or prefix asked for
        super().__init__(f"no conversation with id {text!r} (see `stackspot-tui conversations`)")


class AmbiguousConversationError(HistoryError):
    def __init__(self, text: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:5]) + (" …" if len(candidates) > 5 else "")
        super().__init__(f"id prefix {text!r} matches several conversations: {shown}; type more of it")


class UnknownTurnError(HistoryError):
    def __init__(self, conversation: str, seq: int) -> None:
        super().__init__(f"conversation {conversation} has no turn {seq + 1}")


class HistoryLockTimeout(HistoryError):
    def __init__(self, path: Path, waited: float) -> None:
        super().__init__(
            f"waited {waited:.1f} s for the history lock {path}: another stackspot-tui process keeps it; "
            "try again when it is done"
        )


class DeleteIncompleteError(HistoryError):
    """The conversation is gone from the history, but some of its files could not be removed."""

    def __init__(self, conv_id: str, leftover: Path, exc: OSError) -> None:
        self.path = leftover
        super().__init__(
            f"deleted conversation {conv_id}, but could not remove its files in {leftover} "
            f"({exc.strerror or exc}); `stackspot-tui repair` tries again"
        )
