"""A StackSpot stand-in that speaks the wire format of shared/stackspot-api.md.

Progress is computed from a clock at callback time (elapsed / duration), so there are no
background tasks and tests can drive time with a fake clock.

Fault slugs, for tests:

| slug                 | behaviour                                                        |
|----------------------|------------------------------------------------------------------|
| `sim-failure`        | runs to 60% then FAILURE with an `error` message                 |
| `sim-rate-limit`     | every odd create answers 429 + `Retry-After`; even ones succeed  |
| `sim-server-error`   | the first 2 polls of each execution answer 503 (HTML body)       |
| `sim-malformed`      | callbacks answer 200 with an HTML body                           |
| `sim-slow`           | lasts 20 × the duration                                          |
| `sim-unknown-status` | status `QUEUED` for the first half, then RUNNING/COMPLETED       |
| `sim-json-result`    | result is a string holding a ```json fenced object               |
| `sim-object-result`  | result is a JSON object                                          |
| `delay-<ms>`         | an echo that lasts exactly <ms> milliseconds                     |
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote

import httpx

from .catalogue import CATALOGUE, StepSpec, answer, input_text, sources_for

FAULT_SLUGS = (
    "sim-failure", "sim-rate-limit", "sim-server-error", "sim-malformed", "sim-slow",
    "sim-unknown-status", "sim-json-result", "sim-object-result",
)
_DELAY = re.compile(r"^delay-(\d{1,9})$")
_FAULT_STEPS = (StepSpec("prepare", "LLM", 0.10, 0.5), StepSpec("run", "LLM", 0.5, 0.98))
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now: float | None = None) -> str:
    """A 26-character ULID: 48-bit milliseconds + 80 random bits, Crockford base32."""
    value = (int((time.time() if now is None else now) * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclass
class SimResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, data: Any, **headers: str) -> "SimResponse":
        return cls(status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode())


@dataclass
class _Execution:
    id: str
    slug: str
    conversation_id: str
    input_data: Any
    earlier: list[str]
    created: float  # clock
    created_wall: float
    duration: float
    polls: int = 0


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Simulator:
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
    ) -> None:
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
        self._memory: dict[str, list[str]] = {}  # conversation id -> earlier inputs
        self._creates: dict[str, int] = {}  # slug -> creates seen
        self.requests: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"Simulator(client_id={self.client_id!r}, duration={self.duration})"

    def completes_at(self, execution_id: str) -> float | None:
        """Wall-clock time at which an execution is (or was) marked COMPLETED; for benchmarks."""
        with self._lock:
            execution = self._executions.get(execution_id)
            return None if execution is None else execution.created_wall + execution.duration

    def polls_of(self, execution_id: str) -> int:
        with self._lock:
            execution = self._executions.get(execution_id)
            return 0 if execution is None else execution.polls

    # -- adapters ---------------------------------------------------------------------------

    def handle_httpx(self, request: httpx.Request) -> httpx.Response:
        response = self.handle(
            request.method,
            request.url.raw_path.decode("ascii").split("?", 1)[0],
            dict(parse_qsl(request.url.query.decode())),
            {k.lower(): v for k, v in request.headers.items()},
            request.read(),
        )
        return httpx.Response(response.status, headers=response.headers, content=response.body)

    def transport(self) -> httpx.MockTransport:
        """An in-process transport for httpx.AsyncClient (how --demo runs)."""
        return httpx.MockTransport(self.handle_httpx)

    # -- routing ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> SimResponse:
        with self._lock:
            if path == "/_sim/requests" and method == "GET":
                return SimResponse.json(200, self.requests)
            if path == "/_sim/expire-tokens" and method == "POST":
                self._tokens.clear()
                return SimResponse(204)
            self.requests.append({"method": method, "path": path, "query": dict(query)})
            if path.endswith("/oidc/oauth/token") and method == "POST":
                return self._token(body)
            if path.startswith("/v1/"):
                denied = self._check_bearer(headers.get("authorization", ""))
                if denied:
                    return denied
                prefix = "/v1/quick-commands/create-execution/"
                if path.startswith(prefix) and method == "POST":
                    return self._create(unquote(path[len(prefix):]), query.get("conversation_id"), body)
                prefix = "/v1/quick-commands/callback/"
                if path.startswith(prefix) and method == "GET":
                    return self._callback(unquote(path[len(prefix):]))
            return SimResponse.json(404, {"code": "NOT_FOUND", "message": f"no route for {method} {path}"})

    # -- auth -------------------------------------------------------------------------------

    def _token(self, body: bytes) -> SimResponse:
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return SimResponse.json(400, {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self._client_secret:
            return SimResponse.json(401, {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"})
        token = "sim-" + secrets.token_urlsafe(24)
        self._tokens[token] = self._clock() + self.token_ttl
        return SimResponse.json(200, {
            "access_token": token, "expires_in": int(self.token_ttl), "refresh_expires_in": 0,
            "token_type": "Bearer", "not-before-policy": 0, "scope": "openid",
        })

    def _check_bearer(self, header: str) -> SimResponse | None:
        token = header[7:] if header.startswith("Bearer ") else ""
        expiry = self._tokens.get(token)
        if expiry is None or self._clock() >= expiry:
            return SimResponse.json(401, {"code": "UNAUTHORIZED", "message": "missing, invalid or expired access token"})
        return None

    # -- executions ---------------------------------------------------------------------------

    def _duration(self, slug: str) -> float:
        match = _DELAY.match(slug)
        if match:
            return int(match.group(1)) / 1000
        return self.duration * (20 if slug == "sim-slow" else 1)

    def _create(self, slug: str, conversation_id: str | None, body: bytes) -> SimResponse:
        if not (slug in CATALOGUE or slug in FAULT_SLUGS or _DELAY.match(slug)):
            return SimResponse.json(404, {"code": "CODEBUDDY_1002_QUICK_COMMAND_NOT_FOUND",
                                          "message": f"Quick command '{slug}' not found"})
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return SimResponse.json(422, {"code": "INVALID_BODY", "message": "body is not valid JSON"})
        if not isinstance(payload, dict) or not isinstance(payload.get("input_data"), (str, dict)):
            return SimResponse.json(422, {"code": "INVALID_BODY", "message": "input_data (string or object) is required"})
        count = self._creates[slug] = self._creates.get(slug, 0) + 1
        if slug == "sim-rate-limit" and count % 2 == 1:
            after = f"{self.retry_after:g}"
            return SimResponse.json(429, {"code": "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED",
                                          "message": "Quick command rate limit exceeded"}, **{"Retry-After": after})
        conversation_id = conversation_id or ulid(self._wall())
        earlier = self._memory.setdefault(conversation_id, [])
        execution = _Execution(ulid(self._wall()), slug, conversation_id, payload["input_data"], list(earlier),
                               self._clock(), self._wall(), self._duration(slug))
        earlier.append(input_text(payload["input_data"]))
        self._executions[execution.id] = execution
        return SimResponse.json(200, execution.id)

    def _callback(self, execution_id: str) -> SimResponse:
        execution = self._executions.get(execution_id)
        if execution is None:
            return SimResponse.json(404, {"code": "EXECUTION_NOT_FOUND", "message": f"Execution '{execution_id}' not found"})
        execution.polls += 1
        if execution.slug == "sim-server-error" and execution.polls <= 2:
            return SimResponse(503, {"Content-Type": "text/html"}, b"<html><body><h1>503 Service Unavailable</h1></body></html>")
        if execution.slug == "sim-malformed":
            return SimResponse(200, {"Content-Type": "text/html"}, b"<html>not json")
        return SimResponse.json(200, self._snapshot(execution))

    def _snapshot(self, execution: _Execution) -> dict[str, Any]:
        fraction = min(1.0, (self._clock() - execution.created) / execution.duration) if execution.duration > 0 else 1.0
        failing = execution.slug == "sim-failure"
        if failing:
            fraction = min(fraction, 0.6)
        done = fraction >= 1.0 or (failing and (self._clock() - execution.created) >= execution.duration)
        steps_spec = CATALOGUE[execution.slug].steps if execution.slug in CATALOGUE else _FAULT_STEPS
        steps = []
        for order, spec in enumerate(steps_spec, 1):
            if fraction < spec.start and not done:
                break
            finished = fraction >= spec.end or (done and not failing)
            steps.append({
                "step_name": spec.name, "execution_order": order, "type": spec.type,
                "step_result": {"answer": f"{spec.name} done", "sources": sources_for(spec)} if finished else None,
            })
        result, error = None, None
        if done and failing:
            status, error = "FAILURE", "Simulated failure: the LLM step raised an error"
        elif done:
            status, result = "COMPLETED", self._result(execution)
        elif execution.slug == "sim-unknown-status" and fraction < 0.5:
            status = "QUEUED"
        else:
            status = "CREATED" if fraction < 0.1 else "RUNNING"
        percentage = 1.0 if status == "COMPLETED" else (0.0 if status in ("CREATED", "QUEUED") else round(fraction, 2))
        end_wall = execution.created_wall + execution.duration
        document = {
            "execution_id": execution.id,
            "quick_command_slug": execution.slug,
            "conversation_id": execution.conversation_id,
            "progress": {
                "start": _iso(execution.created_wall),
                "end": _iso(end_wall) if done else None,
                "duration": round(execution.duration) if done else None,
                "execution_percentage": percentage,
                "status": status,
            },
            "steps": steps,
            "result": result,
        }
        if error:
            document["error"] = error
        return document

    def _result(self, execution: _Execution) -> Any:
        if execution.slug == "sim-object-result":
            return {"summary": "structured answer", "items": [1, 2, 3], "input": execution.input_data}
        if execution.slug == "sim-json-result":
            return "```json\n" + json.dumps({"summary": "fenced JSON answer", "ok": True}, indent=2) + "\n```"
        slug = execution.slug if execution.slug in CATALOGUE or _DELAY.match(execution.slug) else "other"
        return answer(slug, execution.input_data, execution.conversation_id, execution.earlier)
