"""The simulator's quick commands: their steps and how their answers read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DOCS = "https://docs.stackspot.com/en/ai/"


@dataclass(frozen=True)
class StepSpec:
    name: str
    type: str
    start: float  # fraction of the execution when the step appears
    end: float  # fraction when its result is ready


@dataclass(frozen=True)
class QuickCommand:
    slug: str
    description: str
    steps: tuple[StepSpec, ...]


_THREE = (
    StepSpec("fetch-knowledge", "KNOWLEDGE_SOURCE", 0.10, 0.35),
    StepSpec("analyze", "LLM", 0.35, 0.75),
    StepSpec("format-answer", "LLM", 0.75, 0.98),
)
_TWO = (StepSpec("understand", "LLM", 0.10, 0.55), StepSpec("answer", "LLM", 0.55, 0.98))

CATALOGUE: dict[str, QuickCommand] = {
    qc.slug: qc
    for qc in (
        QuickCommand("code-review", "Review code and suggest improvements", _THREE),
        QuickCommand("explain-code", "Explain what a piece of code does", _TWO),
        QuickCommand("generate-tests", "Write pytest tests for a function", _THREE),
        QuickCommand("echo", "Answer with the input, unchanged", (StepSpec("echo", "API", 0.10, 0.98),)),
    )
}


def quick_commands() -> dict[str, str]:
    """Slug -> description of the demo quick commands (for pickers)."""
    return {slug: qc.description for slug, qc in CATALOGUE.items()}


def input_text(input_data: Any) -> str:
    return input_data if isinstance(input_data, str) else json.dumps(input_data, ensure_ascii=False, indent=2)


def _memory(conversation_id: str, earlier: list[str]) -> str:
    if not earlier:
        return f"_New conversation `{conversation_id}`._\n\n"
    asked = "\n".join(f"{n}. “{_short(text)}”" for n, text in enumerate(earlier, 1))
    return f"_Turn {len(earlier) + 1} of conversation `{conversation_id}`._ Earlier you asked:\n\n{asked}\n\n"


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _code_block(text: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}python\n{text}\n{fence}"


def answer(slug: str, input_data: Any, conversation_id: str, earlier: list[str]) -> str:
    """The Markdown result of an execution."""
    text = input_text(input_data)
    if slug == "echo" or slug.startswith("delay-"):
        return text
    head = _memory(conversation_id, earlier)
    lines = text.count("\n") + 1
    if slug == "code-review":
        return head + (
            "## Review\n\n"
            f"- The snippet has {lines} line(s); names are clear enough.\n"
            "- Add type hints and a docstring so callers know what to pass.\n"
            "- Cover the edge cases (empty input, `None`) with a test.\n\n"
            "### Suggested version\n\n" + _code_block(text) + "\n"
        )
    if slug == "explain-code":
        return head + (
            "## Explanation\n\n"
            f"The input ({lines} line(s)) reads top to bottom:\n\n" + _code_block(text) + "\n\n"
            "It defines behaviour that callers use through its public names. "
            "Nothing here touches the network or the file system.\n"
        )
    if slug == "generate-tests":
        return head + (
            "## Tests\n\n```python\nimport pytest\n\n\n"
            "def test_happy_path():\n    assert subject() is not None\n\n\n"
            "@pytest.mark.parametrize(\"value\", [0, -1, None])\n"
            "def test_edge_cases(value):\n    with pytest.raises((TypeError, ValueError)):\n        subject(value)\n```\n\n"
            f"Written for:\n\n" + _code_block(text) + "\n"
        )
    return head + f"Answer to:\n\n{_code_block(text)}\n"


def sources_for(step: StepSpec) -> list[dict[str, str]]:
    if step.type != "KNOWLEDGE_SOURCE":
        return []
    return [{"title": "StackSpot AI quick commands", "url": DOCS + "quick-commands"}]
