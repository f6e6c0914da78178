"""Typed errors of the StackSpot client. Each message says what the user can do about it."""

from __future__ import annotations

from typing import Any


class StackSpotError(Exception):
    """Base class: ``str(err)`` is a one-line message fit for a terminal."""

    #: short machine-readable kind, used in ``--json`` output and history
    kind = "error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class AuthError(StackSpotError):
    """Credentials rejected or the token endpoint misbehaved."""

    kind = "auth"


class ForbiddenError(StackSpotError):
    """403: the account may not run that quick command."""

    kind = "forbidden"


class NotFoundError(StackSpotError):
    """404: unknown quick command slug or execution id."""

    kind = "not_found"


class RateLimitedError(StackSpotError):
    """429 that outlasted our retries."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=429)
        self.retry_after = retry_after


class ServerError(StackSpotError):
    """5xx (after retries) or another unexpected HTTP status."""

    kind = "server"


class NetworkError(StackSpotError):
    """Connection refused, DNS failure, timeouts (after retries)."""

    kind = "network"


class ProtocolError(StackSpotError):
    """The server answered something that is not the documented format."""

    kind = "protocol"


class ExecutionFailed(StackSpotError):
    """The execution reached FAILURE/ERROR on the server."""

    kind = "failure"

    def __init__(self, message: str, *, execution=None) -> None:
        super().__init__(message)
        self.execution = execution


class ExecutionTimeout(StackSpotError):
    """The execution did not finish within the configured overall timeout."""

    kind = "timeout"


class BadRequestError(StackSpotError):
    """400/422: StackSpot refused the request body or parameters."""

    kind = "bad_request"


class PromptTooLongError(BadRequestError):
    """400 from an agent: the prompt (with the conversation so far) exceeds the model's context."""

    kind = "prompt_too_long"


class StreamCut(StackSpotError):
    """An agent's answer stream stopped before its end; what arrived before is still the user's.

    ``reply`` holds what the stream had said besides text (conversation id, tokens...).
    """

    kind = "stream_cut"

    def __init__(self, message: str, *, reply: Any = None) -> None:
        super().__init__(message)
        self.reply = reply
