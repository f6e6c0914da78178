"""StackSpot API: async httpx client, OAuth2 auth, typed answers and errors. No UI imports."""

from .agents import AgentClient, AgentEvent, AgentInfo, AgentReply, ReplyEnded, TextDelta, TokenUsage
from .client import RetryNotice, StackSpotClient
from .errors import (
    AuthError,
    BadRequestError,
    ErrorBody,
    ExecutionTimeout,
    ForbiddenError,
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
    "result_to_text",
]
