"""Conversation history on TinyDB. No UI or HTTP imports."""

from .errors import (
    AmbiguousConversationError,
    HistoryCorruptError,
    HistoryError,
    HistoryLockTimeout,
    HistoryVersionError,
    UnknownConversationError,
    UnknownTurnError,
)
from .history import PAGE_SIZE, SCHEMA_VERSION, HistoryStore, SearchHit
from .models import Conversation, StepSummary, Turn

__all__ = [
    "PAGE_SIZE",
    "SCHEMA_VERSION",
    "AmbiguousConversationError",
    "Conversation",
    "HistoryCorruptError",
    "HistoryError",
    "HistoryLockTimeout",
    "HistoryStore",
    "HistoryVersionError",
    "SearchHit",
    "StepSummary",
    "Turn",
    "UnknownConversationError",
    "UnknownTurnError",
]
