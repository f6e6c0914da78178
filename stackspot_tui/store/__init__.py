"""Conversation history on TinyDB. No UI or HTTP imports."""

from .errors import (
    AmbiguousConversationError,
    DeleteIncompleteError,
    HistoryAccessError,
    HistoryCorruptError,
    HistoryError,
    HistoryLocationError,
    HistoryLockTimeout,
    HistoryReadOnlyError,
    HistoryVersionError,
    HistoryWriteError,
    UnknownConversationError,
    UnknownTurnError,
)
from .history import PAGE_SIZE, SCHEMA_VERSION, HistoryStore, SearchHit
from .models import Conversation, StepSummary, Turn
from .repair import RepairReport

__all__ = [
    "PAGE_SIZE",
    "SCHEMA_VERSION",
    "AmbiguousConversationError",
    "Conversation",
    "DeleteIncompleteError",
    "HistoryAccessError",
    "HistoryCorruptError",
    "HistoryError",
    "HistoryLocationError",
    "HistoryLockTimeout",
    "HistoryReadOnlyError",
    "HistoryStore",
    "HistoryVersionError",
    "HistoryWriteError",
    "RepairReport",
    "SearchHit",
    "StepSummary",
    "Turn",
    "UnknownConversationError",
    "UnknownTurnError",
]
