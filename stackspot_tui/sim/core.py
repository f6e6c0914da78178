"""A StackSpot stand-in that speaks StackSpot's wire format, each variant clients meet included.

One host serves both the token endpoint (`POST /{realm}/oidc/oauth/token`) and the API
(`/v1/...`), plus test hooks: `GET /_sim/requests` (the request log, no headers or bodies),
`GET /_sim/executions/{id}` (when an execution was created and reaches its final status, and
its polls: for benchmarks) and `POST /_sim/expire-tokens`. Quick commands are answered by
`quick.py` (progress modes and fault slugs are listed there), agents (`POST
/v1/agent/{id}/chat`, `GET /v1/agents`) by `agents.py`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from ..ids import ulid
from .agents import AgentDesk, Chat, Pacing, agents_listing
from .quick import FAULTS, QuickCommands
from .response import SimResponse, stackspot_error

FAULT_SLUGS = tuple(FAULTS)
_TOKEN_PATH = re.compile(r"^/[^/]+/oidc/oauth/token$")
_CREATE = "/v1/quick-commands/create-execution/"
_CALLBACK = "/v1/quick-commands/callback/"
_AGENT_CHAT = re.compile(r"^/v1/agent/([^/]+)/chat$")
_FACTS = "/_sim/executions/"


__all__ = ["FAULT_SLUGS", "SimResponse", "Simulator", "ulid"]


class Simulator:
    """StackSpot's token endpoint and quick-command API, in memory. All state sits behind one lock."""

    def __init__(
        self,
        *,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",
        token_ttl: float = 1199.0,
        duration: float = 3.0,
        progress: str = "steps",
        object_input: str = "any",
        retry_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        pacing: Pacing | None = None,
        max_prompt_chars: int = 200_000,
        agent_listing: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        sync_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``progress``: how `execution_percentage` moves (quick.PROGRESS_MODES); ``object_input``:
        which object shape create-execution accepts (`any`, `plain`, or `json` for `{"json": …}`
        only). ``sleep``/``sync_sleep`` pace streamed answers (in-process async and sync clients,
        and the loopback server); fakes make a stream instant and deterministic in tests."""
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_ttl = token_ttl
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> expiry (clock)
        self.quick = QuickCommands(
            duration=duration,
            progress=progress,
            retry_after=retry_after,
            object_input=object_input,
            clock=clock,
            wall=wall_clock,
        )
        self.requests: list[dict[str, Any]] = []  # what /_sim/requests answers
        self.agents = AgentDesk(pacing=pacing or Pacing(), max_prompt_chars=max_prompt_chars, wall=wall_clock)
        self.agent_listing = agent_listing
        self.sleep = sleep
        self.sync_sleep = sync_sleep

    def __repr__(self) -> str:  # never shows the secret
        return f"Simulator(client_id={self.client_id!r}, duration={self.duration}, progress={self.quick.progress!r})"

    @property
    def duration(self) -> float:
        return self.quick.duration

    def completes_at(self, execution_id: str) -> float | None:
        """Wall-clock time at which an execution reaches its final status; for benchmarks."""
        with self._lock:
            facts = self.quick.facts(execution_id)
            return None if facts is None else facts["completes_at"]

    def polls_of(self, execution_id: str) -> int:
        """How many callback requests an execution has received; for benchmarks."""
        with self._lock:
            facts = self.quick.facts(execution_id)
            return 0 if facts is None else facts["polls"]

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
            if path.startswith(_FACTS) and method == "GET":
                facts = self.quick.facts(unquote(path[len(_FACTS) :]))
                return SimResponse.json(200, facts) if facts else SimResponse.json(404, {"detail": "Not Found"})
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
            return self.quick.create(unquote(path[len(_CREATE) :]), query.get("conversation_id"), body)
        if path.startswith(_CALLBACK) and method == "GET":
            return self.quick.callback(unquote(path[len(_CALLBACK) :]))
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
        return SimResponse.json(404, {"detail": "Not Found"})  # FastAPI's own answer

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
                401, stackspot_error("Unauthorized", "UNAUTHORIZED", "Missing, invalid or expired access token")
            )
        return None


MIN_SLEEP = 0.004  # shorter pauses add up until they reach this: a timer cannot wait 0.5 ms reliably


def coalesced(chunks: list[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """The chunks with their pauses, short ones carried over until they add up to MIN_SLEEP, so
    a 2,000-words/s stream keeps its average rate instead of one timer tick per word."""
    owed = 0.0
    for delay, data in chunks:
        owed += delay
        if owed >= MIN_SLEEP:
            yield owed, data
            owed = 0.0
        else:
            yield 0.0, data


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
        for delay, data in coalesced(self._chunks):
            if delay > 0:
                self._sync_sleep(delay)
            yield data
        self._end()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for delay, data in coalesced(self._chunks):
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
