"""Typed views of StackSpot answers.

Every field the server sends may be absent, null or of an unexpected type (public clients
and StackSpot's docs disagree on several): parsing never raises on odd fields, it falls back to
``None``/empty and keeps the raw document for export and debugging.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..fences import code_fence
from ..textsafe import one_line

FINAL_OK = frozenset({"COMPLETED"})
FINAL_FAILED = frozenset({"FAILURE", "ERROR", "FAILED"})
FINAL_STATUSES = FINAL_OK | FINAL_FAILED

# Where a FAILURE's explanation may sit: top level, inside `progress`, or in a step's result.
_EXPLANATION_KEYS = ("error", "error_message", "message", "details", "detail", "reason")
PREVIEW_CHARS = 80  # a web-request step's data, as shown in the progress log


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def explanation_in(data: Any) -> str | None:
    """The human explanation an object carries under one of the usual keys, as one line."""
    if isinstance(data, str):
        return one_line(data, 500) or None
    if not isinstance(data, dict):
        return None
    for key in _EXPLANATION_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return one_line(value, 500)
        if isinstance(value, dict) and value:
            return explanation_in(value) or one_line(_json_text(value), 500)
        if isinstance(value, list) and value:
            return one_line("; ".join(_str(v) or _json_text(v) for v in value), 500)
    return None


@dataclass(frozen=True)
class Source:
    """A knowledge-source citation of a step:
    ``{type, name, slug, document_type, document_score, document_id}``."""

    name: str | None
    type: str | None = None
    slug: str | None = None
    document_type: str | None = None
    score: float | None = None
    document_id: str | None = None
    url: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, raw: Any) -> Source:
        if isinstance(raw, str):
            return cls(name=raw, raw=raw)
        data = _dict(raw)
        return cls(
            name=_str(data.get("name")) or _str(data.get("title")),
            type=_str(data.get("type")),
            slug=_str(data.get("slug")),
            document_type=_str(data.get("document_type")),
            score=_float(data.get("document_score")),
            document_id=_str(data.get("document_id")),
            url=_str(data.get("url")) or _str(data.get("uri")) or _str(data.get("link")),
            raw=raw,
        )

    def label(self) -> str:
        """The source's name (or whatever names it)."""
        name = self.name or self.slug or self.document_id or self.url
        return one_line(name, 120) if name else one_line(_json_text(self.raw), 120)

    def detail(self) -> str:
        """`name (type, score 0.83)`: how a quick command's step shows it."""
        facts = [fact for fact in (self.type or self.document_type,) if fact]
        if self.score is not None:
            facts.append(f"score {self.score:.2f}")
        if self.url and self.url != self.label():
            facts.append(self.url)
        return self.label() + (f" ({', '.join(one_line(f, 80) for f in facts)})" if facts else "")


@dataclass(frozen=True)
class WebResult:
    """What a web-request step got back: `status_code`, `headers`, `data`, `json_data`."""

    status_code: int | None
    data: str | None  # the body as text (`data`, else `json_data` as JSON)
    headers: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def failed(self) -> bool:
        return self.status_code is not None and self.status_code >= 400

    def preview(self, limit: int = PREVIEW_CHARS) -> str:
        return one_line(self.data or "", limit)

    def summary(self) -> str:
        """`HTTP 200 · {"ticket": 42}`."""
        status = f"HTTP {self.status_code}" if self.status_code is not None else "no status"
        preview = self.preview()
        return f"{status} · {preview}" if preview else status

    @classmethod
    def parse(cls, result: dict[str, Any]) -> WebResult | None:
        if not any(key in result for key in ("status_code", "json_data", "headers")):
            return None
        data = result.get("data")
        if not isinstance(data, str):
            json_data = result.get("json_data")
            data = None if data is None and json_data is None else _json_text(data if data is not None else json_data)
        return cls(status_code=_int(result.get("status_code")), data=data, headers=_dict(result.get("headers")))


@dataclass(frozen=True)
class Step:
    name: str
    order: int | None  # `execution_order` as sent (StackSpot counts from 0)
    type: str | None
    answer: str | None
    done: bool
    sources: tuple[Source, ...] = ()
    web: WebResult | None = None  # set for web-request steps
    error: str | None = None  # an explanation in the step's result, or its failed web request
    position: int = 1  # 1-based place in `steps[]`: how steps are numbered on screen

    @classmethod
    def parse(cls, raw: Any, index: int) -> Step:
        data = _dict(raw)
        result = data.get("step_result")
        result_dict = _dict(result)
        web = WebResult.parse(result_dict)
        answer = result_dict.get("answer") if isinstance(result, dict) else result
        sources_raw = result_dict.get("sources")
        sources = tuple(Source.parse(s) for s in sources_raw) if isinstance(sources_raw, list) else ()
        error = explanation_in({k: result_dict.get(k) for k in _EXPLANATION_KEYS if k in result_dict})
        if error is None and web is not None and web.failed:
            error = web.summary()
        return cls(
            name=one_line(_str(data.get("step_name")) or "", 200) or f"step {index + 1}",
            order=_int(data.get("execution_order")),
            type=_str(data.get("type")),
            answer=answer if isinstance(answer, str) else (None if answer is None or web else _json_text(answer)),
            done=result is not None,
            sources=sources,
            web=web,
            error=error,
            position=index + 1,
        )

    def label(self) -> str:
        """`step 2 (fetch-ticket)`."""
        return f"step {self.position} ({self.name})"


@dataclass(frozen=True)
class Progress:
    status: str
    percentage: float | None
    start: str | None
    end: str | None
    duration: float | None
    explanation: str | None = None  # error/message/details inside `progress`

    @classmethod
    def parse(cls, raw: Any) -> Progress:
        data = _dict(raw)
        status = _str(data.get("status"))
        pct = _float(data.get("execution_percentage"))
        if pct is not None and not (0.0 <= pct <= 1.0):
            # Some servers send 0..100; anything else is noise.
            pct = pct / 100.0 if 1.0 < pct <= 100.0 else None
        return cls(
            status=(status or "UNKNOWN").strip().upper() or "UNKNOWN",
            percentage=pct,
            start=_str(data.get("start")),
            end=_str(data.get("end")),
            duration=_float(data.get("duration")),
            explanation=explanation_in({k: data.get(k) for k in _EXPLANATION_KEYS if k in data}),
        )


@dataclass(frozen=True)
class Execution:
    """One callback answer: the state of an execution at one moment."""

    execution_id: str | None
    slug: str | None
    conversation_id: str | None
    progress: Progress
    steps: tuple[Step, ...]
    result: Any
    error: str | None  # an explanation at the top level of the document
    raw: Any = field(repr=False, compare=False, default=None)

    @property
    def status(self) -> str:
        return self.progress.status

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in FINAL_OK

    @property
    def failed(self) -> bool:
        return self.status in FINAL_FAILED

    def result_text(self) -> str:
        return result_to_text(self.result)

    def differs_from(self, other: Execution) -> bool:
        """Whether this snapshot shows progress over ``other``: status, percentage or steps."""
        return (
            self.status != other.status
            or self.progress.percentage != other.progress.percentage
            or [(s.name, s.done) for s in self.steps] != [(s.name, s.done) for s in other.steps]
        )

    @property
    def failed_step(self) -> Step | None:
        """The step a failure stopped at: one whose result explains an error, else the first
        unfinished one, else the last."""
        for step in self.steps:
            if step.error:
                return step
        return next((step for step in self.steps if not step.done), self.steps[-1] if self.steps else None)

    def failure_reason(self) -> str:
        """Why a FAILURE happened: the explanation wherever StackSpot put it (top level, progress,
        the failed step's result), else at which step it stopped."""
        step = self.failed_step
        if self.error or self.progress.explanation:
            return self.error or self.progress.explanation or ""
        if step is not None and step.error:
            return f"{step.label()}: {step.error}"
        if step is not None:
            return f"the execution failed on StackSpot without an explanation; it stopped at {step.label()}"
        return "the execution failed on StackSpot without an explanation, before any step"

    @classmethod
    def parse(cls, raw: Any) -> Execution:
        """Parse a callback document. Never raises; a non-object gives an UNKNOWN status."""
        data = _dict(raw)
        steps_raw = data.get("steps")
        steps = tuple(Step.parse(s, i) for i, s in enumerate(steps_raw)) if isinstance(steps_raw, list) else ()
        return cls(
            execution_id=_str(data.get("execution_id")),
            slug=_str(data.get("quick_command_slug")),
            conversation_id=_str(data.get("conversation_id")),
            progress=Progress.parse(data.get("progress")),
            steps=steps,
            result=data.get("result"),
            error=explanation_in({k: data.get(k) for k in _EXPLANATION_KEYS if k in data}),
            raw=raw,
        )


def parse_timestamp(value: str | None) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp (`+00:00` or `Z`; naive means UTC); None if unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def result_to_text(result: Any) -> str:
    """Result as displayable text: Markdown stays as is, JSON becomes a fenced block."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    return code_fence(json.dumps(result, indent=2, ensure_ascii=False, default=str), "json")
