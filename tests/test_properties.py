"""Property-based tests: any JSON through the callback parser, any text through store -> export -> import."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from conftest import examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stackspot_tui import export
from stackspot_tui.api.models import Execution, result_to_text
from stackspot_tui.engine.service import _step_summaries
from stackspot_tui.store import HistoryStore
from stackspot_tui.store.models import StepSummary, Turn

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)

# Callback-shaped documents with every field possibly missing, null or of the wrong type.
callback_like = st.fixed_dictionaries(
    {},
    optional={
        "execution_id": json_values,
        "conversation_id": json_values,
        "quick_command_slug": json_values,
        "progress": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "status": json_values,
                "execution_percentage": json_values,
                "start": json_values,
                "end": json_values,
                "duration": json_values,
            },
        ),
        "steps": json_values
        | st.lists(
            json_values
            | st.fixed_dictionaries(
                {},
                optional={
                    "step_name": json_values,
                    "execution_order": json_values,
                    "type": json_values,
                    "step_result": json_values,
                },
            ),
            max_size=4,
        ),
        "result": json_values,
        "error": json_values,
    },
)


@given(json_values | callback_like)
def test_any_json_parses_to_an_execution(document):
    execution = Execution.parse(document)
    assert isinstance(execution.status, str) and execution.status
    assert execution.progress.percentage is None or 0.0 <= execution.progress.percentage <= 1.0
    assert isinstance(result_to_text(execution.result), str)
    for step in execution.steps:
        assert isinstance(step.name, str)
    _step_summaries(execution.steps)  # what the engine stores must be buildable too
    assert execution.is_final == (execution.status in ("COMPLETED", "FAILURE", "ERROR"))


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=st.text(max_size=40),
    prompts=st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=4),
    results=st.lists(json_values, min_size=4, max_size=4),
)
def test_any_text_survives_store_export_import(title, prompts, results):
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(Path(tmp) / "a")
        conversation = store.create_conversation("qc", title=title)
        for prompt, result in zip(prompts, results, strict=False):
            turn = store.add_turn(conversation.id, prompt, prompt)
            store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=result)
        conversation = store.get_conversation(conversation.id)
        document = export.to_json(conversation, store.turns(conversation.id))
        other = HistoryStore(Path(tmp) / "b")
        imported = other.import_conversation(*export.from_document(json.loads(document)))
        assert export.to_json(imported, other.turns(imported.id)) == document
        assert [t.prompt for t in other.turns(imported.id)] == prompts
        for fmt in export.FORMATS:  # every registered format: no terminal escape carried
            text = export.render(fmt, imported, other.turns(imported.id))
            assert "\x1b" not in text
        page = export.to_html(imported, other.turns(imported.id))
        assert "<script" not in page.lower().replace("&lt;script", "")


@given(st.text(alphabet=st.sampled_from("`~ \nax\t"), max_size=60), st.sampled_from(["", "python", "json"]))
def test_a_code_fence_holds_any_text_and_gives_it_back(text, info):
    from stackspot_tui.fences import code_blocks, code_fence

    assert code_blocks(code_fence(text, info)) == [text.rstrip("\n")]
    assert code_blocks("before\n\n" + code_fence(text, info) + "\n\nafter") == [text.rstrip("\n")]


_steps = st.builds(
    StepSummary,
    name=st.text(max_size=5),
    order=st.none() | st.integers(0, 5),
    sources=st.lists(st.text(max_size=3), max_size=2),
)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.builds(
        Turn,
        conversation=st.just("0000000a"),
        seq=st.integers(0, 300),
        prompt=st.text(max_size=20),
        input_data=json_values,
        result=json_values,
        steps=st.lists(_steps, max_size=3),
        tokens=st.none() | st.dictionaries(st.sampled_from(["input", "output"]), st.integers(0, 9)),
        sources=st.lists(st.text(max_size=3), max_size=2),
    )
)
def test_a_turns_record_is_what_asdict_gives_and_reads_back_the_same(turn):
    """The hand-written `Turn.to_dict` (a page rewrite and an export call it for every turn) is
    `dataclasses.asdict`: same fields in the same order, JSON values copied, not shared."""
    from dataclasses import asdict

    record = turn.to_dict()
    assert record == asdict(turn) and list(record) == list(asdict(turn))
    assert Turn.from_dict(record) == turn
    if isinstance(turn.result, dict | list):
        assert record["result"] is not turn.result
    assert record["steps"] is not turn.steps and record["sources"] is not turn.sources


_any_text = st.text() | st.text(
    alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]) | st.characters()
)
_numbers = st.none() | st.floats(0, 1) | st.sampled_from([1e-05, 0.5, 1e16, 1e300, 12.0]) | st.floats(allow_nan=True)
_counts = st.integers(0, 9) | st.sampled_from([2**63, 2**64, 2**70])
_awkward_json = st.sampled_from([{"a": 1e-05}, [float("nan")], {"n": 2**70}, {"x": -float("inf")}, ["\ud800"]])


@settings(max_examples=examples(150), deadline=None)
@given(
    st.builds(
        Turn,
        conversation=st.just("0000000a"),
        seq=st.integers(0, 300),
        prompt=_any_text,
        input_data=_any_text | _awkward_json | json_values,
        result=st.none() | _any_text | _awkward_json | json_values,
        percentage=_numbers,
        duration=_numbers,
        steps=st.lists(_steps, max_size=3),
        tokens=st.none() | st.dictionaries(st.sampled_from(["input", "output"]), _counts),
        sources=st.lists(_any_text, max_size=2),
    )
)
@example(Turn("0000000a", 1, "p", "x", percentage=1e-05))  # orjson: 0.00001
@example(Turn("0000000a", 1, "p", "x", tokens={"input": 2**64}))  # orjson: refused
@example(Turn("0000000a", 1, "\ud800", "x"))  # orjson: refused
@example(Turn("0000000a", 1, "p", {"a": 1e-05}))
@example(Turn("0000000a", 1, "p", "x", result=[float("nan")]))  # orjson: null
def test_a_turn_in_the_json_export_is_what_the_general_encoder_writes(turn):
    """orjson writes the common turn; byte for byte what json.dumps(indent=2) would, whatever
    the text (surrogates, controls), numbers (20 digits, 1e-05, NaN) or JSON answer."""
    from stackspot_tui.export import _indented, _turn_json

    assert _turn_json(turn) == _indented(turn.to_dict(), "\n    ")


_json_texts = st.one_of(
    json_values.map(json.dumps),
    json_values.map(lambda value: json.dumps(value, ensure_ascii=False)),
    st.integers(-(2**80), 2**80).map(str),
    st.sampled_from([-(2**63) - 1, -(2**63), 2**64 - 1, 2**64, 10**19]).map(lambda n: f"[{n}]"),
    st.text(alphabet=st.sampled_from('{}[]",:0123456789.eE+-truefalsn \\u\n\ud800\x00\ufeff')),
    st.binary(max_size=40),
)


@settings(max_examples=examples(300), deadline=None)
@given(_json_texts)
def test_history_json_parses_as_json_loads_parses_it(text):
    """`fastjson.loads` (orjson, json when orjson refuses or would answer differently) gives
    what json.loads gives, and fails where it fails: a history file means the same either way."""
    from stackspot_tui import fastjson

    def outcome(parse):
        try:
            return "ok", json.dumps(parse(text), allow_nan=True, sort_keys=True)  # NaN == NaN, 1 != 1.0
        except (ValueError, RecursionError) as exc:
            return "error", type(exc).__name__

    assert outcome(fastjson.loads) == outcome(json.loads)


@given(json_values | st.lists(json_values, max_size=3).map(tuple))
def test_the_json_exports_indenting_is_json_dumps_indent_2(value):
    """The JSON export writes turns with its own indenting (json.dumps' indent runs its slow
    pure-Python encoder): byte for byte what json.dumps writes, at any depth."""
    from stackspot_tui.export import _indented

    assert _indented(value, "\n    ") == json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n    ")


@given(
    st.fixed_dictionaries(
        {"conversation": st.just("0000000a"), "seq": st.integers(0, 300), "prompt": st.text(max_size=5)},
        optional={
            "input_data": st.text(max_size=5),
            "status": st.text(max_size=5),
            "sources": st.lists(st.text(max_size=3), max_size=2),
            "steps": st.lists(st.fixed_dictionaries({"name": st.text(max_size=3)}, optional={"done": st.booleans()})),
            "created_at": st.just("2026-01-01T00:00:00Z"),
            "unknown": st.integers(),
        },
    )
)
def test_a_turn_read_with_fields_missing_is_what_its_constructor_makes(record):
    """`Turn.from_dict` fills a turn in without the generated __init__: the same turn, defaults
    fresh (never shared between turns), and a missing required field still a TypeError."""
    known = {k: v for k, v in record.items() if k != "unknown"}
    steps = [StepSummary(**s) for s in known.pop("steps", [])]
    if "input_data" not in known:
        try:
            Turn.from_dict(record)
        except TypeError:
            return
        raise AssertionError("a turn without input_data was read")
    turn = Turn.from_dict(record)
    expected = Turn(**known, steps=steps)
    if "created_at" not in known:
        expected.created_at = turn.created_at
    assert turn == expected
    if "sources" not in record:
        assert Turn.from_dict(record).sources is not turn.sources


@given(
    st.lists(st.text(st.sampled_from("ab \t\n\u00a0\u4e00·›✔x"), max_size=30), max_size=6),
    st.integers(min_value=1, max_value=25),
)
def test_progress_lines_are_wrapped_as_textwrap_wraps_them(lines, width):
    import textwrap

    from stackspot_tui.tui.widgets import ProgressLog

    wrapped = [part for line in lines for part in textwrap.wrap(line, width, subsequent_indent="  ") or [""]]
    assert ProgressLog._wrap(lines, width) == wrapped
