"""The simulator's quick commands: their steps, and how their answers read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..fences import code_fence
from ..wording import counted

DOCS = "https://docs.stackspot.com/en/ai"


@dataclass(frozen=True)
class SourceSpec:
    """A knowledge-source citation, as StackSpot sends it."""

    name: str
    slug: str
    score: float
    document_type: str = "CUSTOM"

    def document(self, index: int) -> dict[str, Any]:
        return {
            "type": "KNOWLEDGE_SOURCE",
            "name": self.name,
            "slug": self.slug,
            "document_type": self.document_type,
            "document_score": self.score,
            "document_id": f"01JDOC{self.slug.upper().replace('-', '')[:14]:0<14}{index:06d}",
        }


@dataclass(frozen=True)
class WebSpec:
    """What a web-request step got back."""

    status_code: int
    data: str | None
    json_data: Any = None
    content_type: str = "application/json"

    def document(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "headers": {"content-type": self.content_type, "x-request-id": "sim"},
            "data": self.data,
            "json_data": self.json_data,
        }


@dataclass(frozen=True)
class StepSpec:
    name: str
    type: str  # "LLM" or "API" (a web request)
    start: float  # fraction of the execution at which the step appears
    end: float  # fraction at which its result is ready (<= 1.0)
    note: str = ""  # an LLM step's answer
    sources: tuple[SourceSpec, ...] = ()
    web: WebSpec | None = None  # a web-request step's result

    def result(self) -> dict[str, Any]:
        if self.web is not None:
            return self.web.document()
        return {"answer": self.note, "sources": [source.document(n) for n, source in enumerate(self.sources)]}


@dataclass(frozen=True)
class QuickCommand:
    slug: str
    description: str
    steps: tuple[StepSpec, ...]


def _web(status: int, payload: Any) -> WebSpec:
    return WebSpec(status, json.dumps(payload), payload)


_REVIEW_GUIDE = SourceSpec("Code review guidelines", "code-review-guidelines", 0.83)
_QUICK_COMMANDS = SourceSpec("Quick commands", "stackspot-docs-quick-commands", 0.71, "PDF")
_PYTEST = SourceSpec("Testing with pytest", "testing-with-pytest", 0.88)
_KNOWLEDGE = SourceSpec("Knowledge sources", "stackspot-docs-knowledge-sources", 0.64, "PDF")

# Steps of unequal length, as StackSpot's are: short web requests, then a long LLM step during
# which a percentage that counts finished steps stalls. The last step ends the execution.
CATALOGUE: dict[str, QuickCommand] = {
    qc.slug: qc
    for qc in (
        QuickCommand(
            "code-review",
            "Review code and suggest improvements",
            (
                StepSpec("fetch-guidelines", "API", 0.04, 0.10, web=_web(200, {"rules": 12, "style": "pep8"})),
                StepSpec(
                    "search-knowledge",
                    "LLM",
                    0.10,
                    0.25,
                    "Found 2 relevant documents.",
                    (_REVIEW_GUIDE, _QUICK_COMMANDS),
                ),
                StepSpec("analyze", "LLM", 0.25, 0.85, "Read the code and listed the findings."),
                StepSpec("format-answer", "LLM", 0.85, 1.0, "Wrote the review as Markdown."),
            ),
        ),
        QuickCommand(
            "explain-code",
            "Explain what a piece of code does",
            (
                StepSpec("search-knowledge", "LLM", 0.04, 0.30, "Found 1 relevant document.", (_KNOWLEDGE,)),
                StepSpec("explain", "LLM", 0.30, 1.0, "Explained the code step by step."),
            ),
        ),
        QuickCommand(
            "generate-tests",
            "Write pytest tests for a function",
            (
                StepSpec(
                    "search-knowledge", "LLM", 0.04, 0.20, "Found 2 relevant documents.", (_PYTEST, _QUICK_COMMANDS)
                ),
                StepSpec("draft-tests", "LLM", 0.20, 0.70, "Drafted a happy-path test and edge cases."),
                StepSpec(
                    "check-syntax",
                    "API",
                    0.70,
                    0.75,
                    web=WebSpec(200, "OK: 2 tests collected", None, "text/plain"),
                ),
                StepSpec("format-answer", "LLM", 0.75, 1.0, "Wrote the tests as a Markdown code block."),
            ),
        ),
        QuickCommand(
            "echo",
            "Answer with the input, unchanged",
            (
                StepSpec("receive", "API", 0.04, 0.20, web=_web(200, {"received": True})),
                StepSpec("echo", "LLM", 0.20, 1.0, "Sent the input back."),
            ),
        ),
    )
}

# Steps of the fault and delay-<ms> slugs.
PLAIN_STEPS = (
    StepSpec("receive-input", "API", 0.03, 0.06, web=_web(200, {"received": True})),
    StepSpec("search-knowledge", "LLM", 0.06, 0.15, "Found 1 relevant document.", (_KNOWLEDGE,)),
    StepSpec("generate", "LLM", 0.15, 0.85, "Produced the answer."),
    StepSpec("format-answer", "LLM", 0.85, 1.0, "Formatted the answer."),
)

# sim-web-steps: web requests of every kind, then an LLM step.
WEB_STEPS = (
    StepSpec("get-ticket", "API", 0.03, 0.15, web=_web(200, {"ticket": 42, "title": "Login fails"})),
    StepSpec("get-readme", "API", 0.15, 0.25, web=WebSpec(200, "# README\n\nA project.", None, "text/markdown")),
    StepSpec("get-missing", "API", 0.25, 0.35, web=WebSpec(404, '{"detail": "Not Found"}', {"detail": "Not Found"})),
    StepSpec("get-json-only", "API", 0.35, 0.45, web=WebSpec(201, None, {"id": "a1", "tags": ["x", "y"]})),
    StepSpec("get-large", "API", 0.45, 0.55, web=WebSpec(200, "row," * 5000, None, "text/csv")),
    StepSpec("summarize", "LLM", 0.55, 1.0, "Summarized the responses."),
)

# The sim-failure-* slugs: the execution fails in `generate` (or, for -web, in `fetch-context`).
FAILING_STEPS = (
    StepSpec("prepare", "API", 0.03, 0.10, web=_web(200, {"ok": True})),
    StepSpec("fetch-context", "API", 0.10, 0.30, web=_web(200, {"files": 3})),
    StepSpec("generate", "LLM", 0.30, 0.90, "Produced the answer."),
    StepSpec("format-answer", "LLM", 0.90, 1.0, "Formatted the answer."),
)
FAILED_WEB = WebSpec(502, "Bad Gateway: the ticket service did not answer", None, "text/plain")


def quick_commands() -> dict[str, str]:
    """Slug -> description of the demo quick commands (for pickers)."""
    return {slug: qc.description for slug, qc in CATALOGUE.items()}


def steps_for(slug: str) -> tuple[StepSpec, ...]:
    command = CATALOGUE.get(slug)
    if command:
        return command.steps
    if slug == "sim-web-steps":
        return WEB_STEPS
    return FAILING_STEPS if slug.startswith("sim-failure") else PLAIN_STEPS


def input_text(input_data: Any) -> str:
    """The input as the answers quote it: text as is, an object as indented JSON."""
    return input_data if isinstance(input_data, str) else json.dumps(input_data, ensure_ascii=False, indent=2)


def answer(slug: str, input_data: Any, conversation_id: str, earlier: list[str]) -> str:
    """The Markdown result of an execution; `earlier` are the conversation's previous inputs."""
    text = input_text(input_data)
    if slug == "echo" or slug.startswith("delay-") or slug.startswith("progress-"):
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
        f"- The snippet has {counted(_lines(text), 'line')}; the names read clearly.\n"
        "- Add type hints and a docstring so callers know what to pass.\n"
        "- Cover the edge cases (empty input, `None`) with a test.\n\n"
        "### Suggested version\n\n" + code_fence(text, "python") + "\n"
    )


def _explain(text: str) -> str:
    names = _names(text)
    defines = f"It defines {', '.join(f'`{n}`' for n in names)}." if names else "It defines no function or class."
    return (
        "## Explanation\n\n"
        f"The input ({counted(_lines(text), 'line')}) reads top to bottom:\n\n" + code_fence(text, "python") + "\n\n"
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
