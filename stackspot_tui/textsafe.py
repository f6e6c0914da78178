"""Server text shown as text: control characters (terminal escapes) made visible, never obeyed."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls (\x9b is a one-byte CSI on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Replace control characters (ESC included) with their visible Unicode pictures (␛, ␇…)."""
    return _CONTROL.sub(_picture, text)


def _picture(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (␛ for ESC)
    return "\N{SYMBOL FOR DELETE}" if code == 0x7F else "\N{REPLACEMENT CHARACTER}"
