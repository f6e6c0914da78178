"""A StackSpot stand-in that speaks StackSpot's wire format, each variant clients meet included.

Progress is computed from a clock at callback time (elapsed / duration), so there are no
background tasks and tests can drive time with a fake clock. One host serves both the token
endpoint (`POST /{realm}/oidc/oauth/token`) and the API (`/v1/...`), plus two test hooks:
`GET /_sim/requests` (the request log, no headers or bodies) and `POST /_sim/expire-tokens`.
Agents (`POST /v1/agent/{id}/chat`, `GET /v1/agents`) are answered by `agents.py`.

Fault slugs, for tests:

| slug                 | behaviour                                                          |
|----------------------|--------------------------------------------------------------------|
| `sim-failure`        | runs to 60% then FAILURE, with a top-level `error` message         |
| `sim-rate-limit`     | odd-numbered creates (1st, 3rd...) answer 429 + `Retry-After`      |
| `sim-server-error`   | the first 2 polls of each execution answer 503 with an HTML body   |
| `sim-malformed`      | callbacks answer 200 with an HTML body (`<html>not json`)          |
| `sim-slow`           | lasts 20 × the duration                                            |
| `sim-unknown-status` | status `QUEUED` for the first half, then RUNNING/COMPLETED         |
| `sim-json-result`    | result is a string holding a ```json fenced object                 |
| `sim-object-result`  | result is a JSON object, not a string                              |
| `delay-<ms>`         | an echo that lasts exactly <ms> milliseconds (e.g. `delay-500`)    |
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from ..ids import ulid
from .agents import AgentDesk, Chat, Pacing, agents_listing
from .catalogue import CATALOGUE, StepSpec, answer, input_text, steps_for

FAULT_SLUGS = (
    "sim-failure",
    "sim-rate-limit",
    "sim-server-error",
    "sim-malformed",
    "sim-slow",
    "sim-unknown-status",
    "sim-json-result",
    "sim-object-result",
)
FAILURE_MESSAGE = "Simulated failure: the LLM step raised an error"
_FAILS_AT = 0.6  # fraction of the duration at which sim-failure gives up
_SLOW_FACTOR = 20
_SERVER_ERROR_POLLS = 2
_EPSILON = 1e-9  # so that created + N ms, polled at exactly N ms later, counts as done
_DELAY = re.compile(r"^delay-(\d{1,9})$")
_TOKEN_PATH = re.compile(r"^/[^/]+/oidc/oauth/token$")
_CREATE = "/v1/quick-commands/create-execution/"
_CALLBACK = "/v1/quick-commands/callback/"
_AGENT_CHAT = re.compile(r"^/v1/agent/([^/]+)/chat$")
_HTML_503 = b"<html><body><h1>503 Service Unavailable</h1></body></html>"


@dataclass
class SimResponse:
    """One answer, independent of any HTTP framework.

    A streamed answer has ``chunks`` — (delay before, data) pairs the adapter paces — instead of
    ``body``; ``cut`` ends the connection after them without finishing the body.
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[tuple[float, bytes]] | None = None
    cut: bool = False

    @classmethod
    def json(cls, status: int, data: Any, **headers: str) -> SimResponse:
        return cls(status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode())


@dataclass
class _Execution:
    id: str
    slug: str
    conversation_id: str
    input_data: Any
    earlier: list[str]  # the conversation's inputs before this one
    created: float  # clock
    created_wall: float  # wall clock, for the ISO timestamps
    duration: float
    polls: int = 0

    @property
    def stops_at(self) -> float:
        """Fraction of the duration at which the execution reaches its final status."""
        return _FAILS_AT if self.slug == "sim-failure" else 1.0


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _seconds(value: float) -> str:
    """Retry-After as an integer when whole ("1"), else as the float ("0.5")."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _known(slug: str) -> bool:
    return slug in CATALOGUE or slug in FAULT_SLUGS or _DELAY.match(slug) is not None


class Simulator:
    """StackSpot's token endpoint and quick-command API, in memory. All state sits behind one lock."""

    def __init__(
        self,
        *,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",
        token_ttl: float = 1199.0,
        duration: float = 3.0,
        retry_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        pacing: Pacing | None = None,
        max_prompt_chars: int = 200_000,
        agent_listing: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        sync_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``sleep``/``sync_sleep`` pace streamed answers (in-process async and sync clients, and
        the loopback server); fakes make a stream instant and deterministic in tests."""
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_ttl = token_ttl
        self.duration = duration
        self.retry_after = retry_after
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> expiry (clock)
        self._executions: dict[str, _Execution] = {}
        self._memory: dict[str, list[str]] = {}  # conversation id -> its inputs so far
        self._creates: dict[str, int] = {}  # slug -> valid creates seen
        self.requests: list[dict[str, Any]] = []  # what /_sim/requests answers
        self.agents = AgentDesk(pacing=pacing or Pacing(), max_prompt_chars=max_prompt_chars, wall=wall_clock)
        self.agent_listing = agent_listing
        self.sleep = sleep
        self.sync_sleep = sync_sleep

    def __repr__(self) -> str:  # never shows the secret
        return f"Simulator(client_id={self.client_id!r}, duration={self.duration})"

    def completes_at(self, execution_id: str) -> float | None:
        """Wall-clock time at which an execution reaches its final status; for benchmarks."""
        with self._lock:
            execution = self._executions.get(execution_id)
            if execution is None:
                return None
            return execution.created_wall + execution.duration * execution.stops_at

    def polls_of(self, execution_id: str) -> int:
        """How many callback requests an execution has received; for benchmarks."""
        with self._lock:
            execution = self._executions.get(execution_id)
            return 0 if execution is None else execution.polls

    # -- adapters ---------------------------------------------------------------------------

    def handle_httpx(self, request: httpx.Request) -> httpx.Response:
        response = self.handle(
            request.method,
            request.url.raw_path.decode().split("?", 1)[0],
            dict(parse_qsl(request.url.query.decode())),
            {name.lower(): value for name, value in request.headers.items()},
            request.read(),
        )
        if response.chunks is not None:
            stream = PacedStream(response.chunks, response.cut, self.sleep, self.sync_sleep)
            return httpx.Response(response.status, headers=response.headers, stream=stream)
        return httpx.Response(response.status, headers=response.headers, content=response.body)

    def transport(self) -> httpx.MockTransport:
        """An in-process transport for httpx clients (how --demo runs)."""
        return httpx.MockTransport(self.handle_httpx)

    # -- routing ----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> SimResponse:
        """Answer one request. `path` is still percent-encoded; header names are lower-case."""
        with self._lock:
            if path == "/_sim/requests" and method == "GET":
                return SimResponse.json(200, self.requests)
            if path == "/_sim/expire-tokens" and method == "POST":
                self._tokens.clear()
                return SimResponse(204)
            is_token = _TOKEN_PATH.match(path) is not None
            # A token request's query could carry credentials: log its path only.
            entry: dict[str, Any] = {"method": method, "path": path, "query": {} if is_token else dict(query)}
            if _AGENT_CHAT.match(path):
                entry["chat"] = _chat_summary(body)
            self.requests.append(entry)
            if is_token and method == "POST":
                return self._token(body)
            if path.startswith("/v1/"):
                return self._check_bearer(headers.get("authorization", "")) or self._api(method, path, query, body)
            return self._no_route(method, path)

    def _api(self, method: str, path: str, query: dict[str, str], body: bytes) -> SimResponse:
        if path.startswith(_CREATE) and method == "POST":
            return self._create(unquote(path[len(_CREATE) :]), query.get("conversation_id"), body)
        if path.startswith(_CALLBACK) and method == "GET":
            return self._callback(unquote(path[len(_CALLBACK) :]))
        chat = _AGENT_CHAT.match(path)
        if chat and method == "POST":
            return _chat_response(self.agents.chat(unquote(chat.group(1)), body))
        if path == "/v1/agents" and method == "GET":
            if not self.agent_listing:
                return self._no_route(method, path)
            return SimResponse.json(200, agents_listing())
        return self._no_route(method, path)

    @staticmethod
    def _no_route(method: str, path: str) -> SimResponse:
        return SimResponse.json(404, {"code": "NOT_FOUND", "message": f"No route for {method} {path}"})

    # -- auth -------------------------------------------------------------------------------

    def _token(self, body: bytes) -> SimResponse:
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        grant = form.get("grant_type")
        if grant is None:
            return SimResponse.json(
                400, {"error": "invalid_request", "error_description": "Missing form parameter: grant_type"}
            )
        if grant != "client_credentials":
            return SimResponse.json(
                400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self._client_secret:
            return SimResponse.json(
                401, {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}
            )
        token = "sim-" + secrets.token_urlsafe(24)
        self._tokens[token] = self._clock() + self.token_ttl
        return SimResponse.json(
            200,
            {
                "access_token": token,
                "expires_in": int(self.token_ttl),
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "openid",
            },
        )

    def _check_bearer(self, header: str) -> SimResponse | None:
        """None when the header carries a live token, else the 401 answer."""
        scheme, _, token = header.partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or self._clock() >= expiry:
            return SimResponse.json(
                401, {"code": "UNAUTHORIZED", "message": "Missing, invalid or expired access token"}
            )
        return None

    # -- executions ---------------------------------------------------------------------------

    def _duration(self, slug: str) -> float:
        match = _DELAY.match(slug)
        if match:
            return int(match.group(1)) / 1000
        return self.duration * (_SLOW_FACTOR if slug == "sim-slow" else 1)

    def _create(self, slug: str, conversation_id: str | None, body: bytes) -> SimResponse:
        if not _known(slug):
            return SimResponse.json(
                404, {"code": "CODEBUDDY_1002_QUICK_COMMAND_NOT_FOUND", "message": f"Quick command '{slug}' not found"}
            )
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return SimResponse.json(422, {"code": "INVALID_BODY", "message": "The body is not valid JSON"})
        if not isinstance(payload, dict) or not isinstance(payload.get("input_data"), (str, dict)):
            return SimResponse.json(
                422, {"code": "INVALID_BODY", "message": "input_data (a string or an object) is required"}
            )
        count = self._creates[slug] = self._creates.get(slug, 0) + 1
        if slug == "sim-rate-limit" and count % 2 == 1:
            return SimResponse.json(
                429,
                {
                    "code": "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED",
                    "message": "Quick command rate limit exceeded, try again later",
                },
                **{"Retry-After": _seconds(self.retry_after)},
            )
        execution = self._start(slug, conversation_id or ulid(self._wall()), payload["input_data"])
        return SimResponse.json(200, execution.id)

    def _start(self, slug: str, conversation_id: str, input_data: Any) -> _Execution:
        # An unknown conversation id is accepted: its memory starts now.
        inputs = self._memory.setdefault(conversation_id, [])
        execution = _Execution(
            ulid(self._wall()),
            slug,
            conversation_id,
            input_data,
            list(inputs),
            self._clock(),
            self._wall(),
            self._duration(slug),
        )
        inputs.append(input_text(input_data))
        self._executions[execution.id] = execution
        return execution

    def _callback(self, execution_id: str) -> SimResponse:
        execution = self._executions.get(execution_id)
        if execution is None:
            return SimResponse.json(
                404, {"code": "EXECUTION_NOT_FOUND", "message": f"Execution '{execution_id}' not found"}
            )
        execution.polls += 1
        if execution.slug == "sim-server-error" and execution.polls <= _SERVER_ERROR_POLLS:
            return SimResponse(503, {"Content-Type": "text/html"}, _HTML_503)
        if execution.slug == "sim-malformed":
            return SimResponse(200, {"Content-Type": "text/html"}, b"<html>not json")
        return SimResponse.json(200, self._snapshot(execution))

    def _fraction(self, execution: _Execution) -> float:
        """How far the execution is, 0..stops_at."""
        elapsed = self._clock() - execution.created
        if execution.duration <= 0 or elapsed >= execution.duration * execution.stops_at - _EPSILON:
            return execution.stops_at
        return max(0.0, elapsed / execution.duration)

    def _snapshot(self, execution: _Execution) -> dict[str, Any]:
        fraction = self._fraction(execution)
        done = fraction >= execution.stops_at
        status = _status(execution.slug, fraction, done)
        document: dict[str, Any] = {
            "execution_id": execution.id,
            "quick_command_slug": execution.slug,
            "conversation_id": execution.conversation_id,
            "progress": {
                "start": _iso(execution.created_wall),
                "end": _iso(execution.created_wall + execution.duration * fraction) if done else None,
                "duration": round(execution.duration * fraction) if done else None,
                "execution_percentage": _percentage(status, fraction),
                "status": status,
            },
            "steps": [
                _step(order, spec, fraction)
                for order, spec in enumerate(steps_for(execution.slug), 1)
                if fraction >= spec.start
            ],
            "result": self._result(execution) if status == "COMPLETED" else None,
        }
        if status == "FAILURE":
            document["error"] = FAILURE_MESSAGE
        return document

    @staticmethod
    def _result(execution: _Execution) -> Any:
        if execution.slug == "sim-object-result":
            return {"summary": "structured answer", "items": [1, 2, 3], "input": execution.input_data}
        if execution.slug == "sim-json-result":
            return "```json\n" + json.dumps({"summary": "fenced JSON answer", "ok": True}, indent=2) + "\n```"
        return answer(execution.slug, execution.input_data, execution.conversation_id, execution.earlier)


def _status(slug: str, fraction: float, done: bool) -> str:
    if done:
        return "FAILURE" if slug == "sim-failure" else "COMPLETED"
    if slug == "sim-unknown-status" and fraction < 0.5:
        return "QUEUED"
    return "CREATED" if fraction < 0.1 else "RUNNING"


def _percentage(status: str, fraction: float) -> float:
    if status == "COMPLETED":
        return 1.0
    if status in ("CREATED", "QUEUED"):
        return 0.0
    if status == "FAILURE":
        return round(fraction, 2)
    return min(round(fraction, 2), 0.99)  # 1.0 only once COMPLETED


def _step(order: int, spec: StepSpec, fraction: float) -> dict[str, Any]:
    finished = fraction >= spec.end
    result = {"answer": spec.note, "sources": [{"title": t, "url": u} for t, u in spec.sources]}
    return {
        "step_name": spec.name,
        "execution_order": order,
        "type": spec.type,
        "step_result": result if finished else None,
    }


class PacedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A streamed answer for in-process clients, sync or async: paced chunks, then the end or a cut."""

    def __init__(
        self,
        chunks: list[tuple[float, bytes]],
        cut: bool,
        sleep: Callable[[float], Awaitable[None]],
        sync_sleep: Callable[[float], None],
    ) -> None:
        self._chunks = chunks
        self._cut = cut
        self._sleep = sleep
        self._sync_sleep = sync_sleep

    def __iter__(self) -> Iterator[bytes]:
        for delay, data in self._chunks:
            if delay > 0:
                self._sync_sleep(delay)
            yield data
        self._end()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for delay, data in self._chunks:
            if delay > 0:
                await self._sleep(delay)
            yield data
        self._end()

    def _end(self) -> None:
        if self._cut:  # what httpx raises when a server closes a chunked body early
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def _chat_response(chat: Chat) -> SimResponse:
    if chat.document is not None or chat.status != 200:
        return SimResponse.json(chat.status, chat.document)
    headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    return SimResponse(200, headers, chunks=chat.chunks, cut=chat.cut)


def _chat_summary(body: bytes) -> dict[str, Any]:
    """What the request log keeps of a chat body: the conversation fields, not the prompt."""
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    if not isinstance(payload, dict):
        return {}
    keep = ("conversation_id", "use_conversation", "streaming", "stackspot_knowledge", "return_ks_in_response")
    summary = {key: payload[key] for key in keep if key in payload}
    prompt = payload.get("user_prompt")
    summary["prompt_chars"] = len(prompt) if isinstance(prompt, str) else None
    return summary
