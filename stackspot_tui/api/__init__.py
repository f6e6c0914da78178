"""StackSpot API: async httpx client, OAuth2 auth, typed answers and errors. No UI imports."""

from .client import RetryNotice, StackSpotClient
from .errors import (
    AuthError,
    BadRequestError,
    ExecutionFailed,
    ExecutionTimeout,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    StackSpotError,
)
from .models import Execution, Progress, Source, Step, result_to_text
from .policy import PollPolicy, RetryPolicy

__all__ = [
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
    "ProtocolError",
    "RateLimitedError",
    "RetryNotice",
    "RetryPolicy",
    "ServerError",
    "Source",
    "StackSpotClient",
    "StackSpotError",
    "Step",
    "result_to_text",
]
