"""The one sanitizer for text from outside (servers, files, prompts shown back): control
characters such as terminal escapes are made visible, or dropped from one-line messages,
never obeyed. Every other module uses these two functions rather than a pattern of its own."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls (\x9b is a one-byte CSI on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Replace control characters (ESC included) with their visible Unicode pictures (␛, ␇…)."""
    return _CONTROL.sub(_picture, text)


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace, drop control characters (terminal escapes), cap the length."""
    text = _CONTROL.sub("", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (␛ for ESC)
    return "\N{SYMBOL FOR DELETE}" if code == 0x7F else "\N{REPLACEMENT CHARACTER}"
