"""Server text shown as text: control characters (terminal escapes) made visible, never obeyed."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline


def visible(text: str) -> str:
    """Replace control characters (ESC included) with their visible Unicode pictures (␛, ␇…)."""
    return _CONTROL.sub(lambda m: chr(0x2421) if m.group() == "\x7f" else chr(0x2400 + ord(m.group())), text)
