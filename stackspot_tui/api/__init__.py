"""StackSpot API: async httpx client, OAuth2 auth, typed answers and errors. No UI imports."""

from .agents import AgentClient, AgentEvent, AgentInfo, AgentReply, ReplyEnded, TextDelta, TokenUsage
from .client import RetryNotice, StackSpotClient
from .errors import (
    AuthError,
    BadRequestError,
    ExecutionFailed,
    ExecutionTimeout,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    PromptTooLongError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    StackSpotError,
    StreamCut,
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
    "Execution",
    "ExecutionFailed",
    "ExecutionTimeout",
    "ForbiddenError",
    "NetworkError",
    "NotFoundError",
    "PollPolicy",
    "Progress",
    "PromptTooLongError",
    "ProtocolError",
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
    "result_to_text",
]
