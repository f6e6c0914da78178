"""The simulator's quick commands: their steps, and how their answers read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..fences import code_fence

DOCS = "https://docs.stackspot.com/en/ai"


@dataclass(frozen=True)
class StepSpec:
    name: str
    type: str
    start: float  # fraction of the execution at which the step appears
    end: float  # fraction at which its result is ready (<= 1.0)
    note: str  # the step's answer
    sources: tuple[tuple[str, str], ...] = ()  # (title, url) citations


@dataclass(frozen=True)
class QuickCommand:
    slug: str
    description: str
    steps: tuple[StepSpec, ...]


def _knowledge(end: float, *pages: tuple[str, str]) -> StepSpec:
    return StepSpec(
        "fetch-knowledge", "KNOWLEDGE_SOURCE", 0.10, end, f"Found {len(pages)} relevant knowledge source(s).", pages
    )


_QUICK_COMMANDS_PAGE = ("Quick commands", f"{DOCS}/quick-commands/")
_KNOWLEDGE_PAGE = ("Knowledge sources", f"{DOCS}/knowledge-source/")

CATALOGUE: dict[str, QuickCommand] = {
    qc.slug: qc
    for qc in (
        QuickCommand(
            "code-review",
            "Review code and suggest improvements",
            (
                _knowledge(0.35, ("Code review guidelines", f"{DOCS}/knowledge-source/"), _QUICK_COMMANDS_PAGE),
                StepSpec("analyze", "LLM", 0.35, 0.75, "Read the code and listed the findings."),
                StepSpec("format-answer", "LLM", 0.75, 0.98, "Wrote the review as Markdown."),
            ),
        ),
        QuickCommand(
            "explain-code",
            "Explain what a piece of code does",
            (
                _knowledge(0.45, _KNOWLEDGE_PAGE),
                StepSpec("explain", "LLM", 0.45, 0.98, "Explained the code step by step."),
            ),
        ),
        QuickCommand(
            "generate-tests",
            "Write pytest tests for a function",
            (
                _knowledge(0.30, ("Testing with pytest", f"{DOCS}/knowledge-source/"), _QUICK_COMMANDS_PAGE),
                StepSpec("draft-tests", "LLM", 0.30, 0.60, "Drafted a happy-path test and edge cases."),
                StepSpec("check-tests", "API", 0.60, 0.80, "Checked that the tests are valid Python."),
                StepSpec("format-answer", "LLM", 0.80, 0.98, "Wrote the tests as a Markdown code block."),
            ),
        ),
        QuickCommand(
            "echo",
            "Answer with the input, unchanged",
            (
                StepSpec("receive", "API", 0.10, 0.50, "Received the input."),
                StepSpec("echo", "API", 0.50, 0.98, "Sent the input back."),
            ),
        ),
    )
}

# Steps of the fault and delay-<ms> slugs; "run" is the LLM step that sim-failure breaks.
PLAIN_STEPS = (
    StepSpec("prepare", "API", 0.10, 0.50, "Prepared the request."),
    StepSpec("run", "LLM", 0.50, 0.98, "Produced the answer."),
)


def quick_commands() -> dict[str, str]:
    """Slug -> description of the demo quick commands (for pickers)."""
    return {slug: qc.description for slug, qc in CATALOGUE.items()}


def steps_for(slug: str) -> tuple[StepSpec, ...]:
    command = CATALOGUE.get(slug)
    return command.steps if command else PLAIN_STEPS


def input_text(input_data: Any) -> str:
    """The input as the answers quote it: text as is, an object as indented JSON."""
    return input_data if isinstance(input_data, str) else json.dumps(input_data, ensure_ascii=False, indent=2)


def answer(slug: str, input_data: Any, conversation_id: str, earlier: list[str]) -> str:
    """The Markdown result of an execution; `earlier` are the conversation's previous inputs."""
    text = input_text(input_data)
    if slug == "echo" or slug.startswith("delay-"):
        return text
    body = _BODIES.get(slug, _generic)(text)
    return _memory(conversation_id, earlier) + body


def _memory(conversation_id: str, earlier: list[str]) -> str:
    if not earlier:
        return f"_New conversation `{conversation_id}`._\n\n"
    asked = "\n".join(f"{n}. “{_short(text)}”" for n, text in enumerate(earlier, 1))
    return f"_Turn {len(earlier) + 1} of conversation `{conversation_id}`._ Earlier you asked:\n\n{asked}\n\n"


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _lines(text: str) -> int:
    return text.count("\n") + 1


def _names(text: str) -> list[str]:
    return re.findall(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", text, re.MULTILINE)


def _review(text: str) -> str:
    return (
        "## Review\n\n"
        f"- The snippet has {_lines(text)} line(s); the names read clearly.\n"
        "- Add type hints and a docstring so callers know what to pass.\n"
        "- Cover the edge cases (empty input, `None`) with a test.\n\n"
        "### Suggested version\n\n" + code_fence(text, "python") + "\n"
    )


def _explain(text: str) -> str:
    names = _names(text)
    defines = f"It defines {', '.join(f'`{n}`' for n in names)}." if names else "It defines no function or class."
    return (
        "## Explanation\n\n"
        f"The input ({_lines(text)} line(s)) reads top to bottom:\n\n" + code_fence(text, "python") + "\n\n"
        f"{defines} Nothing here touches the network or the file system.\n"
    )


def _tests(text: str) -> str:
    names = _names(text)
    subject = names[0] if names else "subject"
    return (
        "## Tests\n\n```python\nimport pytest\n\n\n"
        f"def test_{subject}_happy_path():\n    assert {subject}(1) is not None\n\n\n"
        '@pytest.mark.parametrize("value", [0, -1, None])\n'
        f"def test_{subject}_edge_cases(value):\n    with pytest.raises((TypeError, ValueError)):\n"
        f"        {subject}(value)\n```\n\n"
        "Written for:\n\n" + code_fence(text, "python") + "\n"
    )


def _generic(text: str) -> str:
    return "Answer to:\n\n" + code_fence(text) + "\n"


_BODIES = {"code-review": _review, "explain-code": _explain, "generate-tests": _tests}
