"""How counts read: "1 turn", "2 turns" (the app, the CLI and exports say it the same way)."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and the noun, singular for exactly one."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
