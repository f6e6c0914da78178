"""Turning server answers into short, safe, one-line messages."""

from __future__ import annotations

import json
import re

import httpx

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace, drop control characters (terminal escapes), cap the length."""
    text = _CONTROL.sub("", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def server_message(response: httpx.Response) -> str | None:
    """The human part of an error answer: JSON message fields, or None for HTML/empty bodies."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(data, str):
        return one_line(data)
    if not isinstance(data, dict):
        return None
    parts = []
    for key in ("error_description", "message", "detail", "error", "code"):
        value = data.get(key)
        if isinstance(value, str) and value and value not in parts:
            parts.append(value)
    return one_line(": ".join(parts[:2])) if parts else None
