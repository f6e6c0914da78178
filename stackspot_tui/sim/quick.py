"""The simulator's quick commands (shared/stackspot-api.md §3): create an execution, poll it.

Progress is computed from a clock at callback time, so there are no background tasks and tests
drive time with a fake clock. An execution's steps (catalogue.py) have unequal lengths; its
`execution_percentage` follows one of the progress modes:

| mode      | `execution_percentage` while running                                      |
|-----------|---------------------------------------------------------------------------|
| `steps`   | finished steps / total (the default, as StackSpot counts): jumps, stalls   |
| `linear`  | elapsed / duration, rounded to 0.01, at most 0.99                          |
| `stalled` | 0.0 until the end                                                          |
| `none`    | the field is absent                                                        |

The mode is the simulator's (`simulate --progress MODE`), or the slug's: `delay-<ms>-<mode>`
or `progress-<mode>`. Slugs for the variants and faults of the document (:data:`FAULTS`):

| slug                    | behaviour                                                                      |
|-------------------------|--------------------------------------------------------------------------------|
| `sim-failure`           | FAILURE at 60% with a top-level `error`                                        |
| `sim-failure-message`   | FAILURE at 60% with a top-level `message`                                      |
| `sim-failure-details`   | FAILURE at 60% with a top-level `details`                                      |
| `sim-failure-progress`  | FAILURE at 60% with `progress.error`                                           |
| `sim-failure-step`      | FAILURE at 60%, the failed step's `step_result` holds `{error}`                |
| `sim-failure-web`       | FAILURE at 20%, a web-request step answered 502 (in its `step_result`)         |
| `sim-failure-silent`    | FAILURE at 60% with no explanation anywhere                                    |
| `sim-web-steps`         | web-request steps of every kind (200 JSON/text, 404, `json_data` only, 20 KB)  |
| `sim-stuck-created`     | stays CREATED for 3 × the duration and its first 3 polls, then runs            |
| `sim-html-poll`         | the first 2 polls of each execution answer 200 with an HTML page               |
| `sim-malformed`         | every poll answers 200 with an HTML page                                       |
| `sim-server-error`      | the first 2 polls of each execution answer 503 with an HTML page               |
| `sim-rate-limit`        | odd-numbered creates answer 429 with `Retry-After`                             |
| `sim-rate-limit-minute` | odd-numbered creates answer 429 per minute, no `Retry-After`                   |
| `sim-quota`             | every create answers the daily-quota 429 (`CODEBUDDY_1044…`), no `Retry-After` |
| `sim-forbidden`         | create answers 403 `{type, code, details}`                                     |
| `sim-invalid`           | create answers 422 with FastAPI's `detail` list                                |
| `sim-not-found-bare`    | create answers 404 with the bare JSON string `"Not Found"`                     |
| `sim-not-found-detail`  | create answers 404 `{"detail": "Not Found"}`                                   |
| `sim-slow`              | lasts 20 × the duration                                                        |
| `sim-unknown-status`    | status `QUEUED` for the first half                                             |
| `sim-json-result`       | result is a string holding a ```json fenced object                             |
| `sim-object-result`     | result is a JSON object, not a string                                          |
| `delay-<ms>[-<mode>]`   | an echo lasting exactly <ms> milliseconds, in a progress mode (optional)       |
| `progress-<mode>`       | an echo in that progress mode (duration: the simulator's)                      |

Errors are StackSpot-shaped: `{"type", "code", "details"}`, FastAPI's 422 `{"detail": [...]}`,
and `{"detail": "Not Found"}` for an unknown route.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..ids import ulid
from .catalogue import CATALOGUE, FAILED_WEB, StepSpec, answer, input_text, steps_for
from .response import SimResponse, stackspot_error, validation_error

PROGRESS_MODES = ("steps", "linear", "stalled", "none")
OBJECT_INPUTS = ("any", "plain", "json")

# slug -> what it does; the README's `simulate` section and tests read this table.
FAULTS: dict[str, str] = {
    "sim-failure": "FAILURE at 60% with a top-level `error`",
    "sim-failure-message": "FAILURE at 60% with a top-level `message`",
    "sim-failure-details": "FAILURE at 60% with a top-level `details`",
    "sim-failure-progress": "FAILURE at 60% with `progress.error`",
    "sim-failure-step": "FAILURE at 60%, the failed step's `step_result` holds `{error}`",
    "sim-failure-web": "FAILURE at 20%, a web-request step answered 502 (in its `step_result`)",
    "sim-failure-silent": "FAILURE at 60% with no explanation anywhere",
    "sim-web-steps": "web-request steps of every kind (200 JSON/text, 404, `json_data` only, 20 KB)",
    "sim-stuck-created": "stays CREATED for 3 × the duration and its first 3 polls, then runs",
    "sim-html-poll": "the first 2 polls of each execution answer 200 with an HTML page",
    "sim-malformed": "every poll answers 200 with an HTML page",
    "sim-server-error": "the first 2 polls of each execution answer 503 with an HTML page",
    "sim-rate-limit": "odd-numbered creates answer 429 with `Retry-After`",
    "sim-rate-limit-minute": "odd-numbered creates answer 429 per minute, no `Retry-After`",
    "sim-quota": "every create answers the daily-quota 429 (`CODEBUDDY_1044…`), no `Retry-After`",
    "sim-forbidden": "create answers 403 `{type, code, details}`",
    "sim-invalid": "create answers 422 with FastAPI's `detail` list",
    "sim-not-found-bare": 'create answers 404 with the bare JSON string `"Not Found"`',
    "sim-not-found-detail": 'create answers 404 `{"detail": "Not Found"}`',
    "sim-slow": "lasts 20 × the duration",
    "sim-unknown-status": "status `QUEUED` for the first half",
    "sim-json-result": "result is a string holding a ```json fenced object",
    "sim-object-result": "result is a JSON object, not a string",
}
FAILURE_MESSAGE = "Simulated failure: the LLM step raised an error"
_FAILS_AT = 0.6
_FAILS_AT_WEB = 0.2
_SLOW_FACTOR = 20
_STUCK_FACTOR = 3
_STUCK_POLLS = 3  # seen CREATED by this many polls however late they come: tests need no timing
_FLAKY_POLLS = 2  # sim-server-error, sim-html-poll
_EPSILON = 1e-9  # so that created + N ms, polled exactly N ms later, counts as done
_DELAY = re.compile(r"^delay-(\d{1,9})(?:-(steps|linear|stalled|none))?$")
_PROGRESS = re.compile(r"^progress-(steps|linear|stalled|none)$")
_QUOTA = "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED"
_GATEWAY_PAGE = "<html><head><title>{title}</title></head><body><h1>{title}</h1><p>gateway</p></body></html>"


@dataclass
class _Execution:
    id: str
    slug: str
    mode: str
    conversation_id: str
    input_data: Any
    earlier: list[str]  # the conversation's inputs before this one
    created: float  # clock
    created_wall: float  # wall clock, for the timestamps
    queued: float  # seconds in CREATED before the steps start (sim-stuck-created)
    duration: float  # seconds from the end of the queue to the end
    poll_times: list[float] = field(default_factory=list)  # seconds after creation, one a callback

    @property
    def polls(self) -> int:
        return len(self.poll_times)

    @property
    def stops_at(self) -> float:
        """Fraction of the duration at which the execution reaches its final status."""
        if self.slug == "sim-failure-web":
            return _FAILS_AT_WEB
        return _FAILS_AT if self.slug.startswith("sim-failure") else 1.0

    @property
    def ends_after(self) -> float:
        """Seconds from creation to the final status."""
        return self.queued + self.duration * self.stops_at


def _iso(wall: float) -> str:
    """`2024-05-31T19:33:03.731642+00:00`, as StackSpot writes it."""
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="microseconds")


def _seconds(value: float) -> str:
    """Retry-After as an integer when whole ("1"), else as the float ("0.5")."""
    return str(int(value)) if float(value).is_integer() else str(value)


def known(slug: str) -> bool:
    return slug in CATALOGUE or slug in FAULTS or bool(_DELAY.match(slug) or _PROGRESS.match(slug))


class QuickCommands:
    """Executions and their answers. Not thread-safe: the Simulator calls it under its lock."""

    def __init__(
        self,
        *,
        duration: float,
        progress: str,
        retry_after: float,
        object_input: str,
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        if progress not in PROGRESS_MODES:
            raise ValueError(f"unknown progress mode {progress!r}; one of {', '.join(PROGRESS_MODES)}")
        if object_input not in OBJECT_INPUTS:
            raise ValueError(f"unknown object input shape {object_input!r}; one of {', '.join(OBJECT_INPUTS)}")
        self.duration = duration
        self.progress = progress
        self.retry_after = retry_after
        self.object_input = object_input
        self._clock = clock
        self._wall = wall
        self._executions: dict[str, _Execution] = {}
        self._memory: dict[str, list[str]] = {}  # conversation id -> its inputs so far
        self._creates: dict[str, int] = {}  # slug -> valid creates seen

    def facts(self, execution_id: str) -> dict[str, Any] | None:
        """When an execution was created and reaches its final status (wall clock), and its polls."""
        execution = self._executions.get(execution_id)
        if execution is None:
            return None
        return {
            "created": execution.created_wall,
            "completes_at": execution.created_wall + execution.ends_after,
            "polls": execution.polls,
            "poll_times": [round(t, 4) for t in execution.poll_times],
            "mode": execution.mode,
        }

    # -- create ---------------------------------------------------------------------------------

    def create(self, slug: str, conversation_id: str | None, body: bytes) -> SimResponse:
        refusal = self._refusal(slug)
        if refusal is not None:
            return refusal
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return SimResponse.json(422, validation_error((("body",), "Invalid JSON", "value_error.jsondecode")))
        problem = self._input_problem(payload)
        if problem is not None:
            return SimResponse.json(422, validation_error(problem))
        input_data = payload["input_data"]
        if isinstance(input_data, dict) and self.object_input != "plain" and list(input_data) == ["json"]:
            input_data = input_data["json"]  # StackSpot's own action wraps objects this way
        count = self._creates[slug] = self._creates.get(slug, 0) + 1
        limited = self._rate_limit(slug, count)
        if limited is not None:
            return limited
        execution = self._start(slug, conversation_id or ulid(self._wall()), input_data)
        return SimResponse.json(200, execution.id)

    def _refusal(self, slug: str) -> SimResponse | None:
        if not known(slug):
            return SimResponse.json(
                404,
                stackspot_error(
                    "NotFound", "CODEBUDDY_1002_QUICK_COMMAND_NOT_FOUND", f"Quick command '{slug}' not found"
                ),
            )
        if slug == "sim-forbidden":
            return SimResponse.json(
                403,
                stackspot_error(
                    "Forbidden",
                    "CODEBUDDY_1003_QUICK_COMMAND_FORBIDDEN",
                    f"You do not have access to the quick command '{slug}' in this workspace",
                ),
            )
        if slug == "sim-invalid":
            return SimResponse.json(
                422,
                validation_error(
                    (
                        ("body", "input_data"),
                        "ensure this value has at most 8 characters",
                        "value_error.any_str.max_length",
                    ),
                    (("query", "conversation_id"), "not a valid ULID", "value_error"),
                ),
            )
        if slug == "sim-not-found-bare":
            return SimResponse.json(404, "Not Found")
        if slug == "sim-not-found-detail":
            return SimResponse.json(404, {"detail": "Not Found"})
        return None

    def _input_problem(self, payload: Any) -> tuple[tuple[str, ...], str, str] | None:
        if not isinstance(payload, dict) or "input_data" not in payload:
            return ("body", "input_data"), "field required", "value_error.missing"
        value = payload["input_data"]
        if not isinstance(value, (str, dict)):
            return ("body", "input_data"), "str type expected", "type_error.str"
        if isinstance(value, dict) and self.object_input == "json" and not isinstance(value.get("json"), dict):
            return ("body", "input_data", "json"), "field required", "value_error.missing"
        return None

    def _rate_limit(self, slug: str, count: int) -> SimResponse | None:
        if slug == "sim-quota":
            details = "Too many requests. Your limit is 50 requests in the last 1440 minutes"
            return SimResponse.json(429, stackspot_error("TooManyRequests", _QUOTA, details))
        if slug == "sim-rate-limit-minute" and count % 2 == 1:
            details = "Too many requests. Your limit is 20 requests in the last 1 minutes"
            return SimResponse.json(429, stackspot_error("TooManyRequests", _QUOTA, details))
        if slug == "sim-rate-limit" and count % 2 == 1:
            return SimResponse.json(
                429,
                stackspot_error("TooManyRequests", _QUOTA, "Too many requests, try again later"),
                **{"Retry-After": _seconds(self.retry_after)},
            )
        return None

    def _start(self, slug: str, conversation_id: str, input_data: Any) -> _Execution:
        # An unknown conversation id is accepted: its memory starts now.
        inputs = self._memory.setdefault(conversation_id, [])
        duration, mode = self._shape(slug)
        execution = _Execution(
            id=ulid(self._wall()),
            slug=slug,
            mode=mode,
            conversation_id=conversation_id,
            input_data=input_data,
            earlier=list(inputs),
            created=self._clock(),
            created_wall=self._wall(),
            queued=duration * _STUCK_FACTOR if slug == "sim-stuck-created" else 0.0,
            duration=duration,
        )
        inputs.append(input_text(input_data))
        self._executions[execution.id] = execution
        return execution

    def _shape(self, slug: str) -> tuple[float, str]:
        """Duration and progress mode of a new execution."""
        delay = _DELAY.match(slug)
        if delay:
            return int(delay.group(1)) / 1000, delay.group(2) or self.progress
        progress = _PROGRESS.match(slug)
        if progress:
            return self.duration, progress.group(1)
        return self.duration * (_SLOW_FACTOR if slug == "sim-slow" else 1), self.progress

    # -- callback -------------------------------------------------------------------------------

    def callback(self, execution_id: str) -> SimResponse:
        execution = self._executions.get(execution_id)
        if execution is None:
            return SimResponse.json(
                404,
                stackspot_error(
                    "NotFound", "CODEBUDDY_1010_EXECUTION_NOT_FOUND", f"Execution '{execution_id}' not found"
                ),
            )
        execution.poll_times.append(self._clock() - execution.created)
        if execution.slug == "sim-stuck-created" and execution.polls <= _STUCK_POLLS:
            execution.queued = max(execution.queued, self._clock() - execution.created)
        flaky = execution.polls <= _FLAKY_POLLS
        if execution.slug == "sim-server-error" and flaky:
            return SimResponse.html(503, _GATEWAY_PAGE.format(title="503 Service Unavailable"))
        if execution.slug == "sim-malformed" or (execution.slug == "sim-html-poll" and flaky):
            return SimResponse.html(200, _GATEWAY_PAGE.format(title="Please wait"))
        return SimResponse.json(200, self._snapshot(execution))

    def _fraction(self, execution: _Execution) -> float:
        """How far the execution is, 0..stops_at (0 while queued)."""
        elapsed = self._clock() - execution.created
        if elapsed >= execution.ends_after - _EPSILON:
            return execution.stops_at
        if execution.duration <= 0:
            return 0.0
        return max(0.0, (elapsed - execution.queued) / execution.duration)

    def _snapshot(self, execution: _Execution) -> dict[str, Any]:
        fraction = self._fraction(execution)
        final = fraction >= execution.stops_at
        specs = steps_for(execution.slug)
        status = _status(execution.slug, fraction, final, specs[0].start)
        failed = status == "FAILURE"
        steps = [
            _step(order, spec, fraction, failed, execution.slug)
            for order, spec in enumerate(specs)
            if fraction >= spec.start
        ]
        progress: dict[str, Any] = {
            "start": _iso(execution.created_wall),
            "end": _iso(execution.created_wall + execution.ends_after) if final else None,
            "duration": math.ceil(execution.ends_after - 1e-6) if final else None,
            "execution_percentage": _percentage(execution.mode, status, fraction, specs),
            "status": status,
        }
        if execution.mode == "none":
            del progress["execution_percentage"]
        document: dict[str, Any] = {
            "execution_id": execution.id,
            "quick_command_slug": execution.slug,
            "conversation_id": execution.conversation_id,
            "progress": progress,
            "steps": steps,
            "result": self._result(execution) if status == "COMPLETED" else None,
        }
        if failed:
            _explain_failure(execution.slug, document)
        return document

    @staticmethod
    def _result(execution: _Execution) -> Any:
        if execution.slug == "sim-object-result":
            return {"summary": "structured answer", "items": [1, 2, 3], "input": execution.input_data}
        if execution.slug == "sim-json-result":
            return "```json\n" + json.dumps({"summary": "fenced JSON answer", "ok": True}, indent=2) + "\n```"
        return answer(execution.slug, execution.input_data, execution.conversation_id, execution.earlier)


def _status(slug: str, fraction: float, final: bool, first_step: float) -> str:
    if final:
        return "FAILURE" if slug.startswith("sim-failure") else "COMPLETED"
    if slug == "sim-unknown-status" and fraction < 0.5:
        return "QUEUED"
    return "CREATED" if fraction < first_step else "RUNNING"


def _percentage(mode: str, status: str, fraction: float, specs: tuple[StepSpec, ...]) -> float:
    if status == "COMPLETED":
        return 1.0
    if mode == "steps":
        return round(sum(1 for spec in specs if fraction >= spec.end) / len(specs), 2)
    if mode == "linear" and status not in ("CREATED", "QUEUED"):
        return min(round(fraction, 2), 0.99)  # 1.0 only once COMPLETED
    return 0.0


def _step(order: int, spec: StepSpec, fraction: float, failed: bool, slug: str) -> dict[str, Any]:
    result: dict[str, Any] | None = spec.result() if fraction >= spec.end else None
    if failed and result is None:  # the step the failure stopped at
        if slug == "sim-failure-step":
            result = {"answer": None, "sources": [], "error": FAILURE_MESSAGE}
        elif slug == "sim-failure-web" and spec.type == "API":
            result = FAILED_WEB.document()
    return {"step_name": spec.name, "execution_order": order, "type": spec.type, "step_result": result}


def _explain_failure(slug: str, document: dict[str, Any]) -> None:
    """Put the failure's explanation where this fault slug's server puts it (or nowhere)."""
    if slug == "sim-failure":
        document["error"] = FAILURE_MESSAGE
    elif slug == "sim-failure-message":
        document["message"] = FAILURE_MESSAGE
    elif slug == "sim-failure-details":
        document["details"] = FAILURE_MESSAGE
    elif slug == "sim-failure-progress":
        document["progress"]["error"] = FAILURE_MESSAGE
