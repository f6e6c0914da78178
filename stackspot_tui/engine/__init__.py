"""The engine: one path from a prompt to a persisted answer (`ConversationService`), and the
app's one door onto it and onto the history (`Backend`).

The app imports from here only; the names below are everything it may see of what lies
behind (the store's records, the errors it may have to show).
"""

from ..api import StackSpotError, slug_problem
from ..export import ExportFormat, ExportWriteError
from ..store import HistoryError, SearchHit
from ..store.models import Conversation, Turn
from .backend import Backend, answer_text
from .service import (
    AnswerDelta,
    AnswerStopped,
    ConversationService,
    Event,
    EventCallback,
    ExecutionStarted,
    FirstToken,
    Progressed,
    RequestSent,
    Retrying,
    StillCreated,
    TurnFinished,
    TurnSaved,
    fetchable_turns,
    summarize_step,
)

__all__ = [
    "AnswerDelta",
    "AnswerStopped",
    "Backend",
    "Conversation",
    "ConversationService",
    "Event",
    "EventCallback",
    "ExecutionStarted",
    "ExportFormat",
    "ExportWriteError",
    "FirstToken",
    "HistoryError",
    "Progressed",
    "RequestSent",
    "Retrying",
    "SearchHit",
    "StackSpotError",
    "StillCreated",
    "Turn",
    "TurnFinished",
    "TurnSaved",
    "answer_text",
    "fetchable_turns",
    "slug_problem",
    "summarize_step",
]
