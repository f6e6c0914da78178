"""The simulator's answers, independent of any HTTP framework, and StackSpot's error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimResponse:
    """One answer.

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

    @classmethod
    def html(cls, status: int, text: str) -> SimResponse:
        """A gateway's page: what sits in front of the API answers when it has trouble."""
        return cls(status, {"Content-Type": "text/html; charset=utf-8"}, text.encode())


def stackspot_error(kind: str, code: str, details: str | None) -> dict[str, Any]:
    """StackSpot's usual error body: `{"type", "code", "details"}`."""
    return {"type": kind, "code": code, "details": details}


def validation_error(*problems: tuple[tuple[str | int, ...], str, str]) -> dict[str, Any]:
    """FastAPI's 422 body: `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`."""
    return {"detail": [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in problems]}
