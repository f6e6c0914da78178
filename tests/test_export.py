"""Transcript exports: four formats, escaping, and the JSON round trip."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from stackspot_tui import export
from stackspot_tui.store.models import Conversation, StepSummary, Turn


def sample() -> tuple[Conversation, list[Turn]]:
    conversation = Conversation(
        id="a1b2c3d4",
        slug="code-review",
        title="Review <b>my</b> code",
        conversation_id="01CONVERSATION",
        turn_count=3,
        created_at="2026-11-20T12:00:00.000Z",
        updated_at="2026-11-20T12:05:00.000Z",
    )
    turns = [
        Turn(
            conversation="a1b2c3d4",
            seq=0,
            prompt="def f():\n    ```\n    return 1",
            input_data="def f()",
            status="COMPLETED",
            execution_id="01EXEC0",
            conversation_id="01CONVERSATION",
            steps=[StepSummary(name="analyze", order=1, type="LLM", done=True, sources=["StackSpot docs"])],
            result="## Review\n\nLooks fine.\n\n```python\nprint('hi')\n```\n<script>alert(1)</script>\n[x](javascript:alert(2))",
            created_at="2026-11-20T12:00:00.000Z",
            finished_at="2026-11-20T12:00:07.000Z",
            duration=7,
        ),
        Turn(
            conversation="a1b2c3d4",
            seq=1,
            prompt="json please",
            input_data={"q": "json"},
            status="COMPLETED",
            execution_id="01EXEC1",
            result={"items": [1, 2]},
            created_at="2026-11-20T12:01:00.000Z",
        ),
        Turn(
            conversation="a1b2c3d4",
            seq=2,
            prompt="fail \x1b[31mred",
            input_data="x",
            status="FAILURE",
            execution_id="01EXEC2",
            error="Simulated failure",
            created_at="2026-11-20T12:02:00.000Z",
        ),
    ]
    return conversation, turns


def test_markdown_has_facts_answers_and_safe_fences():
    md = export.to_markdown(*sample())
    assert md.startswith("# Review <b>my</b> code\n")
    for fact in ("`code-review`", "`01CONVERSATION`", "execution 01EXEC0", "status FAILURE", "7 s", "StackSpot docs"):
        assert fact in md
    # the prompt holds ``` so its fence is longer
    assert "````\ndef f():\n    ```\n    return 1\n````" in md
    assert '"items": [' in md and "**Error:** Simulated failure" in md
    assert "\x1b" not in md


def test_text_export():
    txt = export.to_text(*sample())
    assert "Quick command: code-review" in txt and "StackSpot:\n## Review" in txt and "Error: Simulated failure" in txt
    assert "\x1b" not in txt


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_html_is_self_contained_and_inert():
    page = export.to_html(*sample())
    collector = _Collector()
    collector.feed(page)
    assert "script" not in collector.tags
    assert not any(name.startswith("on") for name, _ in collector.attrs)
    assert not any(value and "javascript:" in value for _, value in collector.attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Review &lt;b&gt;my&lt;/b&gt; code" in page
    assert '<pre><code class="language-python">' in page  # code blocks rendered
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing loaded from outside
    assert "01EXEC0" in page and "StackSpot docs" in page


def test_json_round_trip_is_identical():
    conversation, turns = sample()
    first = export.to_json(conversation, turns)
    document = json.loads(first)
    assert document["format"] == "stackspot-tui.conversation" and document["format_version"] == 1
    again_conversation, again_turns = export.from_document(document)
    assert export.to_json(again_conversation, again_turns) == first


@pytest.mark.parametrize(
    "document, words",
    [
        ([], "not a stackspot-tui"),
        ({"format": "other"}, "not a stackspot-tui"),
        ({"format": "stackspot-tui.conversation", "format_version": 99}, "newer"),
        (
            {"format": "stackspot-tui.conversation", "format_version": 1, "conversation": {}, "turns": []},
            "missing fields",
        ),
        (
            {
                "format": "stackspot-tui.conversation",
                "format_version": 1,
                "conversation": {"id": "x", "slug": "s"},
                "turns": "no",
            },
            "turns list",
        ),
    ],
)
def test_bad_documents_are_refused(document, words):
    with pytest.raises(export.ExportFormatError, match=words):
        export.from_document(document)


def test_web_request_steps_and_sources_reach_every_format():
    conversation, turns = sample()
    turns[0].steps = [
        StepSummary(name="fetch-ticket", order=0, type="API", done=True, status_code=200, preview='{"ticket": 42}'),
        StepSummary(
            name="post", order=1, type="API", done=True, status_code=502, preview="down", error="HTTP 502 · down"
        ),
        StepSummary(name="analyze", order=2, type="LLM", done=True, sources=["Guide (KNOWLEDGE_SOURCE, score 0.83)"]),
        StepSummary(name="format", order=3, type="LLM", done=True, error="model overloaded"),
    ]
    steps = (
        'fetch-ticket (API, HTTP 200: {"ticket": 42}), post (API, HTTP 502: down), analyze (LLM), '
        "format (LLM, failed: model overloaded)"
    )
    assert f"**Steps:** {steps}" in export.to_markdown(conversation, turns)
    text = export.to_text(conversation, turns)
    assert f"Steps: {steps}" in text and "Source: Guide (KNOWLEDGE_SOURCE, score 0.83)" in text
    html = export.to_html(conversation, turns)
    assert "HTTP 200: {&quot;ticket&quot;: 42}" in html and "Guide (KNOWLEDGE_SOURCE, score 0.83)" in html


@pytest.mark.parametrize("fmt", sorted(export.FORMATS))
def test_every_format_streams_a_turn_at_a_time(fmt):
    """Each turn's piece comes out before the next turn is read: `export --all` of a huge history
    holds one page of turns, never a whole conversation or a whole export."""
    conversation, turns = sample()
    read: list[int] = []

    def reading():
        for turn in turns:
            read.append(turn.seq)
            yield turn

    out: list[tuple[int, str]] = []  # each piece with the number of turns read when it came
    for piece in export.chunks(fmt, conversation, reading()):
        out.append((len(read), piece))
    assert out[0][0] == 0  # the head before any turn is read
    for turn in turns:
        [(turns_read, _)] = [(n, p) for n, p in out if turn.execution_id in p]
        assert turns_read <= turn.seq + 1  # written before the next turn is read
    assert "".join(p for _, p in out) == export.render(fmt, conversation, list(turns))


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_streamed_json_is_the_document(count):
    conversation, turns = sample()
    text = export.to_json(conversation, turns[:count])
    assert text == json.dumps(export.to_document(conversation, turns[:count]), indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("fmt", ["md", "txt", "html"])
def test_a_status_says_what_it_means_when_it_does_not_say_it_alone(fmt):
    conversation = Conversation(id="a1b2c3d4", slug="echo", title="states")
    turns = [
        Turn(conversation="a1b2c3d4", seq=0, prompt="p", input_data="p", status="PENDING"),  # a crash before the id
        Turn(conversation="a1b2c3d4", seq=1, prompt="p", input_data="p", status="DETACHED", execution_id="01E"),
        Turn(conversation="a1b2c3d4", seq=2, prompt="p", input_data="p", status="COMPLETED", execution_id="01F"),
    ]
    text = export.render(fmt, conversation, turns)
    assert "status PENDING — may have been sent" in text
    assert "status DETACHED — stopped watching: its answer can be fetched" in text
    assert "status COMPLETED —" not in text and "status COMPLETED" in text
