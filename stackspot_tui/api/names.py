"""What StackSpot accepts as a quick command slug and as an agent id: checked before anything is
sent or saved. Kept apart from the client so the command line can check them without loading httpx."""

from __future__ import annotations

import re

from ..textsafe import one_line
from .errors import InvalidSlugError

SLUG = re.compile(r"[A-Za-z0-9_-]{1,85}")
# Agent ids are ULIDs in practice; refuse only what cannot be one path segment of an id.
_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def slug_problem(slug: str) -> str | None:
    """Why StackSpot would refuse ``slug`` (1-85 of A-Z a-z 0-9 _ -), or None when it is fine."""
    if SLUG.fullmatch(slug):
        return None
    if not slug:
        return "the quick command slug is empty"
    if len(slug) > 85:
        return f"the quick command slug is {len(slug)} characters long; StackSpot accepts at most 85"
    bad = sorted({c for c in slug if not (c.isascii() and (c.isalnum() or c in "_-"))})
    shown = " ".join(repr(c) for c in bad[:5])
    return f"'{one_line(slug, 60)}' is not a quick command slug: {shown} not allowed (only letters, digits, _ and -)"


def check_slug(slug: str) -> str:
    """``slug`` when StackSpot would accept it; else InvalidSlugError saying why."""
    problem = slug_problem(slug)
    if problem:
        raise InvalidSlugError(problem)
    return slug


def valid_agent_id(agent_id: str) -> bool:
    return _AGENT_ID.fullmatch(agent_id) is not None
