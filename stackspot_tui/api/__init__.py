"""StackSpot API: async httpx client, OAuth2 auth, typed answers and errors. No UI imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy

if TYPE_CHECKING:  # what mypy sees; at run time each name is imported on first use
    from .agents import AgentClient, AgentEvent, AgentInfo, AgentReply, ReplyEnded, TextDelta, TokenUsage
    from .client import RetryNotice, StackSpotClient
    from .errors import (
        AuthError,
        BadRequestError,
        ErrorBody,
        ExecutionTimeout,
        ForbiddenError,
        InvalidSlugError,
        NetworkError,
        NotFoundError,
        PromptTooLongError,
        ProtocolError,
        QuotaExceededError,
        RateLimitedError,
        ServerError,
        StackSpotError,
        StreamCut,
        UnexpectedAnswerError,
    )
    from .models import Execution, Progress, Source, Step, result_to_text
    from .names import check_slug, slug_problem
    from .policy import PollPolicy, RetryPolicy

__all__ = [
    "AgentClient",
    "AgentEvent",
    "AgentInfo",
    "AgentReply",
    "AuthError",
    "BadRequestError",
    "ErrorBody",
    "Execution",
    "ExecutionTimeout",
    "ForbiddenError",
    "InvalidSlugError",
    "NetworkError",
    "NotFoundError",
    "PollPolicy",
    "Progress",
    "PromptTooLongError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitedError",
    "ReplyEnded",
    "RetryNotice",
    "RetryPolicy",
    "ServerError",
    "Source",
    "StackSpotClient",
    "StackSpotError",
    "Step",
    "StreamCut",
    "TextDelta",
    "TokenUsage",
    "UnexpectedAnswerError",
    "check_slug",
    "result_to_text",
    "slug_problem",
]

# Lightest first: an error, a model or a name check loads neither httpx nor asyncio.
__getattr__ = lazy.exports(__name__, __all__, ("errors", "names", "models", "policy", "client", "agents"))
