"""The human part of a server's error answer, as one short, safe line."""

from __future__ import annotations

import json

import httpx

from ..textsafe import one_line


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


def error_code(response: httpx.Response) -> str | None:
    """StackSpot's stable error ``code`` (e.g. ``INFERENCE_6001_LLM_MODEL_BAD_REQUEST``), if the body has one."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) and code else None
