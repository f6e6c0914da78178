"""Progress lines for quick-command steps: web requests, sources, failures, a long CREATED."""

from __future__ import annotations

from stackspot_tui.api import Execution
from stackspot_tui.engine import Progressed, StillCreated, summarize_step
from stackspot_tui.progress import progress_lines, stored_step_lines
from stackspot_tui.store.models import StepSummary, Turn

TURN = Turn(conversation="c1", seq=0, prompt="p", input_data="p")
SOURCES = [
    {"type": "KNOWLEDGE_SOURCE", "name": f"doc {n}", "slug": f"d{n}", "document_score": 0.9 - n / 10} for n in range(7)
]
DOCUMENT = {
    "progress": {"status": "RUNNING", "execution_percentage": 0.67},
    "steps": [
        {
            "step_name": "search",
            "execution_order": 0,
            "type": "LLM",
            "step_result": {"answer": "a", "sources": SOURCES},
        },
        {
            "step_name": "fetch-ticket",
            "execution_order": 1,
            "type": "API",
            "step_result": {"status_code": 404, "data": "no ticket\n42", "headers": {}},
        },
        {"step_name": "write", "execution_order": 2, "type": "LLM", "step_result": None},
    ],
}


def lines_of(event) -> list[tuple[str, str]]:
    return [(line.text, line.level) for line in progress_lines(event)]


def test_finished_steps_show_status_data_and_sources():
    execution = Execution.parse(DOCUMENT)
    search, fetch, write = execution.steps
    event = Progressed(TURN, execution, (write,), ((search, 1.25), (fetch, None)), 3.0)
    assert lines_of(event) == [
        ("RUNNING 67% · 3.0 s", "info"),
        ("  step 1 · search done · in 1.2 s", "step"),
        ("    source: doc 0 (KNOWLEDGE_SOURCE, score 0.90)", "step"),
        ("    source: doc 1 (KNOWLEDGE_SOURCE, score 0.80)", "step"),
        ("    source: doc 2 (KNOWLEDGE_SOURCE, score 0.70)", "step"),
        ("    source: doc 3 (KNOWLEDGE_SOURCE, score 0.60)", "step"),
        ("    source: doc 4 (KNOWLEDGE_SOURCE, score 0.50)", "step"),
        ("    … and 2 more sources", "step"),
        ("  step 2 · fetch-ticket failed · HTTP 404 · no ticket 42", "warn"),
        ("  step 3 · write (LLM)", "step"),  # in the order they happened: 1 and 2 ended before 3 began
    ]


def test_a_step_that_starts_and_ends_between_two_polls_reads_start_then_end():
    execution = Execution.parse(DOCUMENT)
    _, fetch, write = execution.steps
    event = Progressed(TURN, execution, (fetch, write), ((fetch, None),), 3.0)
    assert [text for text, _ in lines_of(event)][1:] == [
        "  step 2 · fetch-ticket (API)",
        "  step 2 · fetch-ticket failed · HTTP 404 · no ticket 42",
        "  step 3 · write (LLM)",
    ]


def test_stored_steps_read_as_the_live_log():
    """The transcript of a finished turn shows what the log showed live (from the history)."""
    execution = Execution.parse(DOCUMENT)
    stored = [StepSummary(**summarize_step(step).__dict__) for step in execution.steps]
    texts = [line.text for line in stored_step_lines(stored)]
    assert texts[0] == "  step 1 · search (LLM)" and "    source: doc 0 (KNOWLEDGE_SOURCE, score 0.90)" in texts
    assert "  step 2 · fetch-ticket failed · HTTP 404 · no ticket 42" in texts
    assert texts[-1] == "  step 3 · write (LLM)"


def test_a_step_error_without_a_web_request_gets_its_own_line():
    step = StepSummary(name="analyze", done=True, error="model overloaded")
    assert [line.text for line in stored_step_lines([step])][1:] == [
        "  step 1 · analyze failed",
        "    error: model overloaded",
    ]


def test_a_long_created_is_said():
    [(text, level)] = lines_of(StillCreated(TURN, 61.0))
    assert level == "warn" and text.startswith("still CREATED after 1 min 01 s") and "still waiting" in text
