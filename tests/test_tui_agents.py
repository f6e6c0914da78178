"""Pilot tests: agents in the app — the picker, the streaming answer, Esc, reopening."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_tui import log_text, make_app, make_service, messages, until

from stackspot_tui.engine import ConversationService
from stackspot_tui.sim import Simulator
from stackspot_tui.tui.chat import ChatScreen
from stackspot_tui.tui.screens import TargetPicker
from stackspot_tui.tui.stream import StreamingAnswer
from stackspot_tui.tui.widgets import ConversationBar, PromptInput


class Gate:
    """The simulator's pacing: instant, except that the stream can be held after a given word."""

    def __init__(self, hold_after: int | None = None) -> None:
        self.hold_after = hold_after
        self.words = 0
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.words += 1
        if self.hold_after is not None and self.words == self.hold_after + 1:
            self.held.set()
            await self.release.wait()
        await asyncio.sleep(0)


def agent_service(root: Path, gate: Gate | None = None, **simulator_options) -> ConversationService:
    return make_service(root, simulator=Simulator(sleep=gate or Gate(), **simulator_options))


def streaming(app) -> StreamingAnswer:
    return app.screen.query_one(StreamingAnswer)


def bar_text(app) -> str:
    return str(app.screen.query_one(ConversationBar).render())


async def test_picker_offers_listed_agents_and_chats_with_the_one_chosen(tmp_path):
    service = agent_service(tmp_path)
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, TargetPicker)
        picker = app.screen
        await until(pilot, lambda: "listed by StackSpot" in picker.listing)
        picker.needle = ""
        ids = [option.id for option in picker._options()]
        assert "q:code-review" in ids and {"a:demo-assistant", "a:demo-explainer"} <= set(ids)
        await pilot.press(*"plainer")  # filters quick commands and agents (ids and names) alike
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.agent_id == "demo-explainer" and app.chat.slug is None
        assert "agent: demo-explainer" in bar_text(app)
        app.screen.query_one(PromptInput).load_text("x = 1")
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.running and app.screen.query(StreamingAnswer))
        turn = service.store.turns(app.chat.conversation.id)[-1]
        assert turn.agent_id == "demo-explainer" and turn.status == "COMPLETED"
        assert streaming(app).text == turn.result


async def test_picker_without_the_agent_list_offers_recent_ids_and_a_field(tmp_path):
    service = agent_service(tmp_path, agent_listing=False)
    service.new_conversation(agent_id="my-old-agent")
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        picker = app.screen
        await until(pilot, lambda: "unavailable" in picker.listing)
        assert "type an agent id" in picker.listing
        picker.needle = ""
        assert "a:my-old-agent" in [option.id for option in picker._options()]
        field = picker.query_one("#agent")
        field.focus()
        field.value = "bad id"
        await pilot.press("enter")  # refused: stays in the picker
        assert isinstance(app.screen, TargetPicker)
        field.value = "demo-assistant"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.agent_id == "demo-assistant"


async def test_the_answer_renders_while_it_streams_and_the_log_tells_the_story(tmp_path):
    gate = Gate(hold_after=12)
    service = agent_service(tmp_path, gate)
    app = make_app(service, tmp_path, slug=None, agent_id="demo-assistant")
    async with app.run_test(size=(120, 40)) as pilot:
        assert "agent: demo-assistant" in bar_text(app)
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("how do I test this?")
        await pilot.press("enter")
        await gate.held.wait()
        await until(pilot, lambda: len(streaming(app).rendered.split()) >= 10)
        assert app.chat.running
        assert app.chat.conversation.id in bar_text(app)  # the local id; ctrl+g copies StackSpot's
        await pilot.press("ctrl+g")  # known before the answer ends
        assert app.clipboard == app.chat.conversation.conversation_id
        shown = streaming(app).rendered
        assert shown.startswith("_New conversation") and "## Answer" not in shown[len(shown) :]
        await pilot.press(*"next ")  # keys typed meanwhile reach the prompt
        assert prompt.text == "next "
        await pilot.press("enter")  # but nothing is sent while the answer arrives
        assert len([r for r in service.simulator.requests if "chat" in r]) == 1
        gate.release.set()
        await until(pilot, lambda: not app.chat.running)
        await pilot.pause()
        turn = service.store.turns(app.chat.conversation.id)[-1]
        assert streaming(app).rendered == turn.result and streaming(app).note == "COMPLETED"
        log = log_text(app)
        for expected in ("request sent to agent demo-assistant", "first token after", "stop reason stop"):
            assert expected in log
        assert "tokens/s" in log and "sources: StackSpot AI docs" in log
        assert prompt.text == "next "  # what was typed during the answer is still there


async def test_escape_stops_the_stream_and_keeps_what_arrived(tmp_path):
    gate = Gate(hold_after=8)
    service = agent_service(tmp_path, gate)
    app = make_app(service, tmp_path, slug=None, agent_id="demo-assistant")
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one(PromptInput).load_text("tell me")
        await pilot.press("enter")
        await gate.held.wait()
        await until(pilot, lambda: streaming(app).rendered)
        await pilot.press("escape")
        await until(pilot, lambda: not app.chat.running)
        await pilot.pause()
        turn = service.store.turns(app.chat.conversation.id)[-1]
        assert turn.status == "CANCELLED" and turn.incomplete and turn.result
        assert streaming(app).text == turn.result and "stopped" in streaming(app).note
        assert "the answer so far is kept" in log_text(app)
        assert app.screen.query_one(PromptInput).text == ""  # the answer is there: no prompt handed back


async def test_a_cut_stream_shows_the_partial_answer_and_says_so(tmp_path):
    service = agent_service(tmp_path)
    app = make_app(service, tmp_path, slug=None, agent_id="sim-agent-cut")
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one(PromptInput).load_text("hello")
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.running and messages(app, "error"))
        await pilot.pause()
        assert "INCOMPLETE" in streaming(app).note and streaming(app).rendered
        assert "was cut" in messages(app, "error")[-1].text
        assert "kept in the history" in messages(app, "error")[-1].text


async def test_reopening_an_agent_conversation_shows_its_turns_and_facts(tmp_path):
    service = agent_service(tmp_path)
    conversation = service.new_conversation(agent_id="demo-explainer")
    turn = await service.send(conversation.id, "x = 1")
    app = make_app(service, tmp_path, slug=None, conversation_id=conversation.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.chat.agent_id == "demo-explainer" and "agent: demo-explainer" in bar_text(app)
        assert messages(app, "assistant")[-1].text == turn.result
        log = log_text(app)
        assert "stop reason stop" in log and "sources: Code explanations" in log
