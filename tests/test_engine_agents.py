"""Agent turns through the one engine, against the in-process simulator on fake time."""

from __future__ import annotations

import asyncio
import json

import pytest

from stackspot_tui.engine import (
    AnswerDelta,
    AnswerStopped,
    FirstToken,
    RequestSent,
    TurnFinished,
    TurnSaved,
)
from stackspot_tui.progress import progress_lines
from stackspot_tui.store import UnknownTurnError


def chats(simulator) -> list[dict]:
    return [r["chat"] for r in simulator.requests if "chat" in r]


async def test_an_agent_turn_streams_saves_and_reports(service, simulator):
    conversation = service.new_conversation(agent_id="demo-assistant")
    events = []
    turn = await service.send(conversation.id, "how do I test this?", on_event=events.append)
    kinds = [type(e) for e in events]
    assert kinds[:3] == [TurnSaved, RequestSent, FirstToken]
    assert kinds[-2:] == [AnswerStopped, TurnFinished]
    deltas = [e.text for e in events if isinstance(e, AnswerDelta)]
    assert len(deltas) > 20 and "".join(deltas) == turn.result
    assert turn.status == "COMPLETED" and not turn.incomplete and turn.agent_id == "demo-assistant"
    assert turn.stop_reason == "stop" and turn.tokens and turn.tokens["output"] > 0
    assert turn.sources == ["StackSpot AI docs"] and turn.message_id
    stored = service.store.get_turn(conversation.id, turn.seq)
    assert stored.result == turn.result and stored.tokens == turn.tokens


async def test_the_conversation_id_is_made_up_kept_and_sent_again(service, simulator):
    conversation = service.new_conversation(agent_id="demo-assistant")
    first = await service.send(conversation.id, "first question")
    made_up = service.store.get_conversation(conversation.id).conversation_id
    assert made_up and len(made_up) == 26 and first.conversation_id == made_up
    second = await service.send(conversation.id, "and then?")
    assert [c["conversation_id"] for c in chats(simulator)] == [made_up, made_up]
    assert all(c["use_conversation"] is True for c in chats(simulator))
    assert "first question" in second.result and "Turn 2" in second.result


async def test_latest_or_new_keeps_agents_and_quick_commands_apart(service):
    agent = service.new_conversation(agent_id="demo-assistant")
    quick = service.new_conversation("echo")
    assert service.latest_or_new(agent_id="demo-assistant").id == agent.id
    assert service.latest_or_new("echo").id == quick.id
    assert service.latest_or_new(agent_id="demo-explainer").id not in (agent.id, quick.id)


async def test_a_cut_stream_keeps_the_partial_answer_marked_incomplete(service):
    conversation = service.new_conversation(agent_id="sim-agent-cut")
    events = []
    turn = await service.send(conversation.id, "hi", on_event=events.append)
    assert turn.status == "INCOMPLETE" and turn.incomplete and turn.result
    assert "cut" in turn.error and turn.error_kind == "stream_cut"
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)) == turn.result
    lines = [line.text for e in events for line in progress_lines(e)]
    assert any("the answer so far is kept" in line for line in lines)


async def test_a_stream_without_its_final_event_is_incomplete(service):
    conversation = service.new_conversation(agent_id="sim-agent-no-final")
    turn = await service.send(conversation.id, "hi")
    assert turn.status == "INCOMPLETE" and turn.result and "final event" in turn.error


async def test_an_unknown_agent_ends_the_turn_with_the_error(service):
    conversation = service.new_conversation(agent_id="nobody-here")
    turn = await service.send(conversation.id, "hi")
    assert turn.status == "ERROR" and turn.error_kind == "not_found" and turn.result is None


async def test_rate_limit_is_retried_and_reported(service):
    conversation = service.new_conversation(agent_id="sim-agent-rate-limit")
    events = []
    turn = await service.send(conversation.id, "hi", on_event=events.append)
    assert turn.status == "COMPLETED"
    assert any("rate limited" in line.text for e in events for line in progress_lines(e))


async def test_the_progress_log_tells_the_whole_story(service):
    conversation = service.new_conversation(agent_id="demo-explainer")
    events = []
    await service.send(conversation.id, "x = 1", on_event=events.append)
    text = "\n".join(line.text for e in events for line in progress_lines(e))
    assert "turn 1 · agent demo-explainer" in text
    assert "request sent to agent demo-explainer" in text
    assert "first token after 0.8 s" in text
    assert "stop reason stop" in text and "tokens/s" in text and " out · " in text
    assert "sources: Code explanations, Python style" in text
    assert "COMPLETED" in text


async def test_stopping_mid_stream_keeps_what_arrived(service, fake_time):
    conversation = service.new_conversation(agent_id="demo-assistant")
    seen = asyncio.Event()
    received: list[str] = []

    def on_event(event):
        if isinstance(event, AnswerDelta):
            received.append(event.text)
            if len(received) == 5:
                seen.set()

    task = asyncio.create_task(service.send(conversation.id, "hi", on_event=on_event))
    await seen.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    turn = service.store.get_turn(conversation.id, 0)
    assert turn.status == "CANCELLED" and turn.incomplete
    assert turn.result == "".join(received) and turn.error == "stopped by the user"


async def test_the_partial_answer_reaches_the_disk_while_streaming(simulator, store, fake_time):
    from conftest import make_client

    from stackspot_tui.engine import ConversationService

    gate = asyncio.Event()
    calls = 0

    async def paced(seconds: float) -> None:  # the stream holds after its 10th word
        nonlocal calls
        calls += 1
        if calls == 11:
            await gate.wait()
        await fake_time.sleep(seconds)

    simulator.sleep = paced
    client = make_client(simulator, fake_time)
    service = ConversationService(client, store, clock=fake_time.clock, save_interval=0.01)
    conversation = service.new_conversation(agent_id="demo-assistant")
    task = asyncio.create_task(service.send(conversation.id, "hi"))
    try:
        for _ in range(500):  # until the saver's worker thread has written the first words
            await asyncio.sleep(0.01)
            try:
                turn = store.get_turn(conversation.id, 0)
            except UnknownTurnError:  # the prompt is saved in a worker thread: not yet
                continue
            if turn.result and len(turn.result.split()) >= 10:
                break
        assert turn.status == "STREAMING" and turn.incomplete and len(turn.result.split()) >= 10
    finally:
        gate.set()
        turn = await task
        await client.aclose()
    assert turn.status == "COMPLETED" and not turn.incomplete


async def test_a_quick_command_turn_hands_its_result_over_as_a_delta(service):
    conversation = service.new_conversation("echo")
    events = []
    turn = await service.send(conversation.id, "same words", on_event=events.append)
    assert [e.text for e in events if isinstance(e, AnswerDelta)] == ["same words"]
    assert turn.agent_id is None and turn.tokens is None


async def test_agent_turns_search_export_and_import_with_their_fields(service, tmp_path):
    from stackspot_tui import export

    conversation = service.new_conversation(agent_id="demo-explainer")
    turn = await service.send(conversation.id, "def area(r): return 3.14 * r * r")
    assert service.store.search("What this does")[0].conversation.id == conversation.id
    markdown = export.render("md", service.store.get_conversation(conversation.id), [turn])
    assert "**Agent:** `demo-explainer`" in markdown and "stop reason stop" in markdown
    assert "- Code explanations" in markdown and " out · " in markdown
    document = export.render("json", service.store.get_conversation(conversation.id), [turn])
    imported_conversation, imported_turns = export.from_document(json.loads(document))
    imported = service.store.import_conversation(imported_conversation, imported_turns)
    again = service.store.turns(imported.id)[0]
    assert imported.agent_id == "demo-explainer" and imported.target == "agent demo-explainer"
    assert (again.agent_id, again.tokens, again.sources, again.stop_reason) == (
        turn.agent_id,
        turn.tokens,
        turn.sources,
        turn.stop_reason,
    )
