"""Typed errors of the StackSpot client, and the parsing of StackSpot's error bodies.

Each message says what the user can do about it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..textsafe import one_line

if TYPE_CHECKING:
    import httpx  # the responses it reads; not loaded for the errors alone


class StackSpotError(Exception):
    """Base class: ``str(err)`` is a one-line message fit for a terminal."""

    #: short machine-readable kind, used in ``--json`` output and history
    kind = "error"

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code  # StackSpot's stable error code, when the body carried one

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

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None, window: float | None = None
    ) -> None:
        super().__init__(message, status_code=429, code=code)
        self.retry_after = retry_after
        self.window = window  # seconds of the limit's window, when StackSpot's sentence names it


class QuotaExceededError(RateLimitedError):
    """429 for a quota counted over hours or days: retrying cannot help, so none is made."""

    kind = "quota"


class ServerError(StackSpotError):
    """5xx (after retries) or another unexpected HTTP status."""

    kind = "server"


class UnexpectedAnswerError(ServerError):
    """A 200 whose body is not the JSON expected (a gateway's HTML page): transient, retried."""


class NetworkError(StackSpotError):
    """Connection refused, DNS failure, timeouts (after retries)."""

    kind = "network"


class ProtocolError(StackSpotError):
    """The server answered something that is not the documented format."""

    kind = "protocol"


class ExecutionTimeout(StackSpotError):
    """The execution did not finish within the configured overall timeout."""

    kind = "timeout"


class BadRequestError(StackSpotError):
    """400/422: StackSpot refused the request body or parameters."""

    kind = "bad_request"


class InvalidSlugError(StackSpotError, ValueError):
    """A quick command slug StackSpot would refuse: caught before anything is sent or saved."""

    kind = "invalid_slug"


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


# A limit counted over this many seconds or more is a quota: waiting minutes will not lift it.
QUOTA_WINDOW = 3600.0

# -- error bodies -------------------------------------------------------------------------------

# Keys holding the human sentence, best first: StackSpot's `details`, FastAPI's `detail`,
# Keycloak's `error_description`, and what gateways and other services use.
_SENTENCE_KEYS = ("details", "detail", "error_description", "message", "error_message", "msg", "error")
_LIMIT_WINDOW = re.compile(
    r"(?:in|per|over|within)\s+(?:the\s+)?(?:last\s+)?(\d+(?:[.,]\d+)?)?\s*(second|minute|hour|day|week|month)s?\b",
    re.IGNORECASE,
)
_WINDOW_WORDS = {"daily": 86400.0, "per day": 86400.0, "24 h": 86400.0, "hourly": 3600.0, "per hour": 3600.0}
_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0, "month": 2592000.0}


@dataclass(frozen=True)
class ErrorBody:
    """What an error answer says: the sentence for the user, StackSpot's stable code and type."""

    sentence: str | None = None
    code: str | None = None
    type: str | None = None

    def summary(self) -> str | None:
        """One line: the sentence, with the code after it when the sentence does not name it."""
        if self.sentence and self.code and self.code not in self.sentence:
            return f"{self.sentence} [{self.code}]"
        return self.sentence or self.code or self.type

    @classmethod
    def from_response(cls, response: httpx.Response) -> ErrorBody:
        """Never raises: HTML, empty or undecodable bodies give an empty ErrorBody."""
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return cls()
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Any) -> ErrorBody:
        """Parse a decoded body: `{"type","code","details"}`, FastAPI's 422 `detail` list,
        a bare JSON string (`"Not Found"`), `{"detail": "Not Found"}`, OAuth2's
        `{"error","error_description"}`, or an `{"error": {...}}` envelope."""
        if isinstance(data, str):
            return cls(sentence=one_line(data) or None)
        if isinstance(data, list):
            return cls(sentence=_validation_list(data))
        if not isinstance(data, dict):
            return cls()
        code = _text(data.get("code")) or _text(data.get("error_code"))
        kind = _text(data.get("type"))
        sentence = None
        for key in _SENTENCE_KEYS:
            value = data.get(key)
            if isinstance(value, list):
                sentence = _validation_list(value)
            elif isinstance(value, dict):  # an envelope: {"error": {"code": ..., "message": ...}}
                inner = cls.from_json(value)
                sentence, code, kind = inner.sentence, code or inner.code, kind or inner.type
            else:
                sentence = _text(value)
            if sentence:
                break
        if code is None and data.get("error_description"):  # OAuth2: `error` is the code
            code = _text(data.get("error"))
        return cls(sentence=sentence, code=code, type=kind)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return one_line(value) or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _validation_list(items: list[Any]) -> str | None:
    """FastAPI's `[{"loc": ["body", "input_data"], "msg": "field required", ...}]`, readably:
    `body.input_data: field required; …`."""
    parts = []
    for item in items:
        if isinstance(item, dict):
            message = _text(item.get("msg")) or _text(item.get("message")) or _text(item.get("type"))
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc if isinstance(p, (str, int))) if isinstance(loc, list) else _text(loc)
            if message:
                parts.append(f"{where}: {message}" if where else message)
        else:
            text = _text(item)
            if text:
                parts.append(text)
    return one_line("; ".join(parts), 300) if parts else None


def limit_window(sentence: str | None) -> float | None:
    """Seconds of the window a rate-limit sentence names ("50 requests in the last 1440
    minutes" → 86400); None when it names none."""
    if not sentence:
        return None
    match = _LIMIT_WINDOW.search(sentence)
    if match:
        count = float(match.group(1).replace(",", ".")) if match.group(1) else 1.0
        return count * _UNIT_SECONDS[match.group(2).lower()]
    lowered = sentence.lower()
    for words, window in _WINDOW_WORDS.items():
        if words in lowered:
            return window
    return None
