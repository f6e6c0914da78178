"""The one sanitizer for text from outside (servers, files, prompts shown back): control
characters such as terminal escapes are made visible, or dropped from one-line messages,
never obeyed. Every other module uses these two functions rather than a pattern of its own."""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, and C1 controls (\x9b is a one-byte CSI on some terminals).
_CONTROL_CHARS = "\x00-\x08\x0b-\x1f\x7f-\x9f"
# Invisible characters that change what a line seems to say: bidi embeddings, overrides and
# isolates (U+202A-U+202E, U+2066-U+2069: "Trojan Source"), directional marks, zero-width
# space, word joiner and invisible operators, a BOM inside text, and tag characters (which
# can smuggle hidden instructions) — except the tags of a subdivision flag such as 🏴 England,
# kept whole. Zero-width (non-)joiners stay: emoji and several scripts need them.
_INVISIBLE_CHARS = "\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f"
_CONTROL = re.compile(f"[{_CONTROL_CHARS}]")
_INVISIBLE = re.compile(f"(\U0001f3f4[\U000e0061-\U000e007a]{{2,6}}\U000e007f)|[{_INVISIBLE_CHARS}]")
# Whether there is anything to change at all, in one scan: most text has nothing, and the
# alternation above leaves the regex engine no fast scan (~40 ns a character, 5x this one).
_EITHER = re.compile(f"[{_CONTROL_CHARS}{_INVISIBLE_CHARS}]")
# ASCII text is clean when deleting its printable characters, newline and tab leaves nothing.
_CLEAN_ASCII = bytes(range(0x20, 0x7F)) + b"\n\t"


def visible(text: str) -> str:
    """Control characters (ESC included) as their visible pictures (␛, ␇…), invisible ones
    that reorder or hide text as ‹U+202E›: shown, never obeyed."""
    if text.isascii():  # every invisible one is non-ASCII
        return _CONTROL.sub(_picture, text) if text.encode("ascii").translate(None, _CLEAN_ASCII) else text
    if _EITHER.search(text) is None:
        return text
    return _INVISIBLE.sub(_code_point, _CONTROL.sub(_picture, text))


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace, drop control characters (terminal escapes), show invisible ones
    (‹U+202E›), cap the length."""
    text = _CONTROL.sub("", text)
    if not text.isascii():
        text = _INVISIBLE.sub(_code_point, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# In JSON every such character can be written as an escape: the same data once parsed.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_INVISIBLE_CHARS}]")


def visible_json(data: Any, **options: Any) -> str:
    """``json.dumps`` that stays readable (non-ASCII kept) but writes control and invisible
    characters as escapes (\\u202e): printed on a terminal it cannot be reordered or obeyed,
    and it parses to exactly the same data."""
    return visible_json_text(json.dumps(data, ensure_ascii=False, **options))


def visible_json_text(text: str) -> str:
    """JSON text (non-ASCII kept) with its control and invisible characters written as escapes."""
    if text.isascii() and "\x7f" not in text:  # json escapes the rest of ASCII's controls itself
        return text
    return _JSON_UNSAFE.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    return json.dumps(match.group(), ensure_ascii=True)[1:-1]  # "\\u202e", or a surrogate pair


def _code_point(match: re.Match[str]) -> str:
    if match.group(1):  # a flag's tag sequence
        return match.group(1)
    return f"‹U+{ord(match.group()):04X}›"


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (␛ for ESC)
    return "\N{SYMBOL FOR DELETE}" if code == 0x7F else "\N{REPLACEMENT CHARACTER}"
