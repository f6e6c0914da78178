"""Typed views of StackSpot answers.

Every field the server sends may be absent, null or of an unexpected type (public clients
and StackSpot's docs disagree on several): parsing never raises on odd fields, it falls back to
``None``/empty and keeps the raw document for export and debugging.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..fences import code_fence

FINAL_OK = frozenset({"COMPLETED"})
FINAL_FAILED = frozenset({"FAILURE", "ERROR"})
FINAL_STATUSES = FINAL_OK | FINAL_FAILED


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
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _int(value: Any) -> int | None:
    number = _float(value)
    if number is None or number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Source:
    """A knowledge-source citation of a step."""

    title: str | None
    url: str | None
    raw: Any

    @classmethod
    def parse(cls, raw: Any) -> Source:
        if isinstance(raw, str):
            return cls(title=raw, url=None, raw=raw)
        data = _dict(raw)
        title = _str(data.get("title")) or _str(data.get("name")) or _str(data.get("slug"))
        url = _str(data.get("url")) or _str(data.get("uri")) or _str(data.get("link"))
        return cls(title=title, url=url, raw=raw)

    def label(self) -> str:
        return self.title or self.url or json.dumps(self.raw, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Step:
    name: str
    order: int | None
    type: str | None
    answer: str | None
    done: bool
    sources: tuple[Source, ...] = ()

    @classmethod
    def parse(cls, raw: Any, index: int) -> Step:
        data = _dict(raw)
        result = data.get("step_result")
        result_dict = _dict(result)
        answer = result_dict.get("answer") if isinstance(result, dict) else result
        sources_raw = result_dict.get("sources")
        sources = tuple(Source.parse(s) for s in sources_raw) if isinstance(sources_raw, list) else ()
        order = _int(data.get("execution_order"))
        return cls(
            name=_str(data.get("step_name")) or f"step {order if order is not None else index + 1}",
            order=order,
            type=_str(data.get("type")),
            answer=answer
            if isinstance(answer, str)
            else (None if answer is None else json.dumps(answer, ensure_ascii=False, default=str)),
            done=result is not None,
            sources=sources,
        )


@dataclass(frozen=True)
class Progress:
    status: str
    percentage: float | None
    start: str | None
    end: str | None
    duration: float | None

    @classmethod
    def parse(cls, raw: Any) -> Progress:
        data = _dict(raw)
        status = _str(data.get("status"))
        pct = _float(data.get("execution_percentage"))
        if pct is not None and not (0.0 <= pct <= 1.0):
            # Some servers send 0..100; anything else is noise.
            pct = pct / 100.0 if 1.0 < pct <= 100.0 else None
        return cls(
            status=(status or "UNKNOWN").upper(),
            percentage=pct,
            start=_str(data.get("start")),
            end=_str(data.get("end")),
            duration=_float(data.get("duration")),
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
    error: str | None
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

    @classmethod
    def parse(cls, raw: Any) -> Execution:
        """Parse a callback document. Never raises; a non-object gives an UNKNOWN status."""
        data = _dict(raw)
        steps_raw = data.get("steps")
        steps = tuple(Step.parse(s, i) for i, s in enumerate(steps_raw)) if isinstance(steps_raw, list) else ()
        error = None
        for key in ("error", "error_message", "message", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                error = value
                break
            if isinstance(value, dict):
                error = _str(value.get("message")) or json.dumps(value, ensure_ascii=False, default=str)
                break
        return cls(
            execution_id=_str(data.get("execution_id")),
            slug=_str(data.get("quick_command_slug")),
            conversation_id=_str(data.get("conversation_id")),
            progress=Progress.parse(data.get("progress")),
            steps=steps,
            result=data.get("result"),
            error=error,
            raw=raw,
        )


def result_to_text(result: Any) -> str:
    """Result as displayable text: Markdown stays as is, JSON becomes a fenced block."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    return code_fence(json.dumps(result, indent=2, ensure_ascii=False, default=str), "json")
