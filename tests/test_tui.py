"""Pilot tests: every flow of the chat app against the in-process simulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from time import monotonic

import pytest
from conftest import FakeTime

from stackspot_tui.api import PollPolicy, StackSpotClient
from stackspot_tui.config import Settings
from stackspot_tui.engine import Backend, ConversationService
from stackspot_tui.sim import Simulator, quick_commands
from stackspot_tui.store import HistoryStore
from stackspot_tui.tui.app import StackSpotApp
from stackspot_tui.tui.chat import ChatScreen
from stackspot_tui.tui.screens import FirstRunScreen, HelpScreen, TargetPicker
from stackspot_tui.tui.widgets import ConversationBar, MessageView, ProgressLog, PromptInput

SIM = "https://sim.test"


class AppTime(FakeTime):
    """The clock of an app test's client and simulator: every wait passes at once (the clock
    jumps), so a turn takes no real time; a test that needs a turn to stay running holds time."""

    def __init__(self) -> None:
        super().__init__()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._free_waits = 0
        self.parked: float | None = None  # the wait that is parked, if one is

    def hold(self, after: int = 0) -> None:
        """Park every wait after the next `after` ones until `release()`."""
        self._free_waits = after
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    async def sleep(self, seconds: float) -> None:
        if not self._flowing.is_set():
            if self._free_waits:
                self._free_waits -= 1
            else:
                self.parked = seconds
                try:
                    await self._flowing.wait()
                finally:
                    self.parked = None
        await super().sleep(seconds)


def make_service(
    root: Path,
    duration: float = 0.3,
    *,
    simulator: Simulator | None = None,
    time: AppTime | None = None,
    **client_options,
) -> ConversationService:
    """The engine on the in-process simulator, all on `time` (a given simulator keeps its own)."""
    time = time or AppTime()
    clock = {}
    if simulator is None:
        simulator = Simulator(duration=duration, clock=time.clock)
        client_options.setdefault("sleep", time.sleep)
        clock = {"clock": time.clock}
    client = StackSpotClient(
        client_id="demo-client",
        client_secret="demo-secret",
        token_url=f"{SIM}/r/oidc/oauth/token",
        api_url=SIM,
        transport=simulator.transport(),
        poll=PollPolicy(initial=0.05, interval=0.05, max_interval=0.2),
        **clock,
        **client_options,
    )
    service = ConversationService(client, HistoryStore(root / "history"), **clock)
    service.simulator = simulator
    service.time = time
    return service


@pytest.fixture
def service(tmp_path):
    return make_service(tmp_path)


def make_backend(service: ConversationService) -> Backend:
    """What `runtime.build_backend` gives the app in demo mode, on this test's service."""
    return Backend(service, catalogue=quick_commands())


def make_app(service, tmp_path, **kwargs) -> StackSpotApp:
    settings = kwargs.pop("settings", Settings(data_dir=tmp_path))
    return StackSpotApp(
        settings,
        demo=kwargs.pop("demo", True),
        backend=make_backend(service),
        slug=kwargs.pop("slug", "code-review"),
        **kwargs,
    )


async def until(pilot, condition, timeout: float = 10.0) -> None:
    """Wait for a condition the app reaches through its own events (bounded), then for the screen
    to settle. Polled with a bare sleep: `pilot.pause` repaints the whole screen each time."""
    deadline = monotonic() + timeout
    while not condition():
        if monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout:g} s")
        await asyncio.sleep(0.01)
    await pilot.pause()


def messages(app, role: str | None = None) -> list[MessageView]:
    return [m for m in app.screen.query(MessageView) if role is None or m.role == role]


async def send(pilot, app, text: str, timeout: float = 10.0) -> None:
    before = len(messages(app, "assistant")) + len(messages(app, "error"))
    app.screen.query_one(PromptInput).load_text(text)
    await pilot.press("enter")
    await until(
        pilot,
        lambda: len(messages(app, "assistant")) + len(messages(app, "error")) > before and not app.chat.running,
        timeout,
    )


def log_text(app) -> str:
    """The progress log as one line of words (it wraps lines to its width)."""
    return " ".join(" ".join(app.screen.query_one(ProgressLog).lines).split())


def creates(service) -> list[dict]:
    return [r for r in service.simulator.requests if "create-execution" in r["path"]]


async def test_two_turns_share_the_conversation_id(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "def add(a, b): return a + b")
        await send(pilot, app, "now with type hints")
        conversation = app.chat.conversation
        assert conversation.conversation_id
        calls = creates(service)
        assert "conversation_id" not in calls[0]["query"]
        assert calls[1]["query"]["conversation_id"] == conversation.conversation_id
        assert "Turn 2" in messages(app, "assistant")[-1].text
        bar = str(app.screen.query_one(ConversationBar).render())
        assert conversation.id in bar and "DEMO" in bar and "code-review" in bar
        assert conversation.conversation_id not in bar  # 26 characters: ctrl+g copies it


async def test_progress_lines_come_before_the_answer(service, tmp_path, monkeypatch):
    timeline: list[str] = []
    original_add = ProgressLog.add
    monkeypatch.setattr(ProgressLog, "add", lambda self, line: (timeline.append(line.text), original_add(self, line)))
    original_show = ChatScreen._show_outcome
    monkeypatch.setattr(
        ChatScreen,
        "_show_outcome",
        lambda self, turn, **kw: (turn.result and timeline.append("ANSWER"), original_show(self, turn, **kw)),
    )
    # 2 s of RUNNING: a poll lands in it even on a busy machine (0.3 s sometimes went by unseen).
    app = make_app(service, tmp_path, slug="delay-2000")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "x = 1")
    answer = timeline.index("ANSWER")
    assert any(line.startswith("started execution") for line in timeline[:answer])
    assert any(line.startswith("RUNNING") for line in timeline[:answer])
    assert any("step" in line for line in timeline[:answer])
    assert any(line.startswith("COMPLETED in") for line in timeline[:answer])


async def test_escape_stops_watching_and_the_answer_stays_fetchable(tmp_path):
    service = make_service(tmp_path)
    service.time.hold(after=1)  # one poll (RUNNING), then the turn waits for the test
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("a long question")
        await pilot.press("enter")
        await until(pilot, lambda: "started execution" in log_text(app))
        assert prompt.text == ""
        await pilot.press(*"next")  # typing while a turn runs is kept
        await pilot.press("enter")  # but not sent: one turn at a time
        assert len(creates(service)) == 1 and prompt.text == "next"
        await pilot.press("escape")
        await until(pilot, lambda: not app.chat.running)
        turn = service.store.turns(app.chat.conversation.id)[-1]
        assert turn.status == "DETACHED" and turn.execution_id
        status = messages(app, "status")[-1]
        assert status.who == "Stopped watching" and "f fetches the answer" in status.text
        assert not messages(app, "error")  # not an error: nothing went wrong
        assert prompt.text == "next" and app.focused is prompt  # the draft is untouched
        service.time.release()
        status.focus()
        await pilot.press("f")  # fetch it on demand: no second create-execution
        # the placeholder goes, replaced by the answer (a removal lands a message later)
        await until(pilot, lambda: messages(app, "assistant") and not messages(app, "status"))
        assert not app.chat.running
        assert service.store.get_turn(turn.conversation, turn.seq).status == "COMPLETED"
    assert len(creates(service)) == 1


async def test_a_turn_that_ends_while_quit_asks_quits_without_waiting_for_an_answer(tmp_path):
    from stackspot_tui.tui.screens import QuitScreen

    service = make_service(tmp_path)
    service.time.hold(after=1)
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"almost done", "enter")
        await until(pilot, lambda: "started execution" in log_text(app))
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen))
        service.time.release()  # the turn ends while the question is on screen
        await until(pilot, lambda: app.return_code is not None)
    [turn] = service.store.turns(service.store.list_conversations()[0].id)
    assert turn.status == "COMPLETED" and turn.result and len(creates(service)) == 1


async def test_escape_before_create_answers_says_it_may_have_been_sent_and_resending_asks(tmp_path):
    from stackspot_tui.tui.history import ConfirmScreen

    service = make_service(tmp_path)
    gate = asyncio.Event()
    original = service.client.create_execution

    async def slow_create(*args, **kwargs):
        await gate.wait()
        return await original(*args, **kwargs)

    service.client.create_execution = slow_create
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("is this sent?")
        await pilot.press("enter")
        await until(pilot, lambda: app.chat.conversation and service.store.turns(app.chat.conversation.id))
        await pilot.press("escape")
        await until(pilot, lambda: not app.chat.running)
        status = messages(app, "status")[-1]
        assert status.who == "May have been sent" and "r sends it again" in status.text
        assert prompt.text == "is this sent?"  # given back, to edit or send again
        await pilot.press("enter")  # the same text again: it may run twice, so ask
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "may run it twice" in app.screen.question
        await pilot.press("n")
        assert prompt.text == "is this sent?" and not app.chat.running
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        gate.set()
        await pilot.press("y")
        await until(pilot, lambda: messages(app, "assistant") and not app.chat.running)
        assert prompt.text == "" and app.focused is prompt
        turns = service.store.turns(app.chat.conversation.id)
        # the first turn's create was answered after all: its id is kept and it became fetchable
        assert [t.status for t in turns] == ["DETACHED", "COMPLETED"] and turns[0].execution_id


@pytest.mark.parametrize("slug, words", [("sim-failure", "Simulated failure"), ("no-such-command", "not found")])
async def test_errors_are_shown_not_raised(service, tmp_path, slug, words):
    app = make_app(service, tmp_path, slug=slug)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "please")
        assert words in messages(app, "error")[-1].text
        assert app.is_running and isinstance(app.screen, ChatScreen)
        assert words in log_text(app)


async def test_server_text_is_never_markup_or_escapes(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "look [bold]x[/] and \x1b[31mred")
        screen = app.export_screenshot()
    assert screen.count("[bold]x[/]") >= 2  # prompt and answer, both literal
    assert "\x1b" not in screen and "␛[31mred" in screen


async def test_first_run_without_credentials_offers_demo(tmp_path):
    settings = Settings(data_dir=tmp_path, config_path=tmp_path / "config.toml")
    app = StackSpotApp(settings, demo=False, backend_factory=lambda demo: make_backend(make_service(tmp_path)))
    async with app.run_test(size=(100, 30)) as pilot:
        assert isinstance(app.screen, FirstRunScreen)
        text = str(app.screen.query_one("#explain").render())
        assert "STACKSPOT_CLIENT_ID" in text and str(tmp_path / "config.toml") in text
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.demo and "DEMO" in str(app.screen.query_one(ConversationBar).render())


async def test_first_run_quit(tmp_path):
    app = StackSpotApp(Settings(data_dir=tmp_path), backend_factory=lambda demo: make_backend(make_service(tmp_path)))
    async with app.run_test() as pilot:
        await pilot.press("q")
    assert app.return_code == 0


async def test_keymap_override_takes_effect(service, tmp_path):
    settings = replace(Settings(data_dir=tmp_path), keymap={"send": "ctrl+s", "help": "f2"})
    app = make_app(service, tmp_path, settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("line one")
        prompt.move_cursor(prompt.document.end)
        await pilot.press("enter")  # no longer sends: a newline
        assert prompt.text == "line one\n" and not creates(service)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: messages(app, "assistant") and not app.chat.running)
        assert creates(service)
        await pilot.press("f2")
        assert isinstance(app.screen, HelpScreen)
        assert ("Prompt", "ctrl+s", "Send", "send") in app.screen.rows


async def test_help_lists_every_binding(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        ids = {row[3] for row in app.screen.rows}
        assert {"send", "newline", "cancel", "new_conversation", "pick_slug", "copy_answer", "copy_code", "help"} <= ids
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)


async def test_up_and_down_walk_earlier_prompts(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "first")
        await send(pilot, app, "second")
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("draft")
        await pilot.press("up")
        assert prompt.text == "second"
        await pilot.press("up")
        assert prompt.text == "first"
        await pilot.press("down", "down")
        assert prompt.text == "draft"


async def test_copy_answer_code_and_message(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "print('hi')")
        await pilot.press("ctrl+r")
        assert app.clipboard == messages(app, "assistant")[-1].text
        await pilot.press("ctrl+b")
        assert app.clipboard == "print('hi')"
        messages(app, "user")[0].focus()
        await pilot.press("c")
        assert app.clipboard == "print('hi')"
        await pilot.press("ctrl+g")
        assert app.clipboard == app.chat.conversation.conversation_id


async def test_slug_picker_and_new_conversation(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "hello")
        first = app.chat.conversation.id
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, TargetPicker)
        await pilot.press(*"explain")
        await pilot.press("down", "enter")  # down moves into the filtered choices
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.slug == "explain-code" and app.chat.conversation is None
        await send(pilot, app, "what is this")
        assert app.chat.conversation.id != first and app.chat.conversation.slug == "explain-code"
        assert creates(service)[-1]["path"].endswith("/explain-code")
        await pilot.press("ctrl+n")
        assert app.chat.conversation is None and not messages(app)


async def test_palette_has_our_commands(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)):
        titles = {command.title for command in app.get_system_commands(app.screen)}
    assert {"New conversation", "Choose quick command or agent", "Copy last answer", "Copy code block"} <= titles


async def test_a_huge_answer_is_shown_as_text_not_markdown(service, tmp_path):
    from textual.widgets import Markdown, TextArea

    app = make_app(service, tmp_path, slug="echo")
    big = "## title\n\n```python\nprint(1)\n```\n\n" * 2000  # ~60 KB, 2,000 code blocks
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, big)
        answer = messages(app, "assistant")[-1]
        assert answer.query(TextArea) and not answer.query(Markdown)
        assert answer.query_one(TextArea).text == big[:32_000] and answer.text == big  # view capped, copy whole
        prompt = messages(app, "user")[-1]  # the prompt is as large: a TextArea too
        assert prompt.query(TextArea) and prompt.text == big


async def test_rate_limit_wait_is_shown_with_a_countdown(tmp_path, monkeypatch):
    """The client waits out a 3 s Retry-After: the countdown reads 3, 2, 1 on the fake clock,
    and the retry goes out only when the test lets the wait end."""
    from stackspot_tui.tui.widgets import WaitStatus

    service = make_service(tmp_path)
    time = service.time
    monkeypatch.setattr(WaitStatus, "clock", time.clock)
    service.simulator.quick.retry_after = 3.0
    time.hold()  # the first wait of the turn is the rate limit's
    app = make_app(service, tmp_path, slug="sim-rate-limit")
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("please")
        await pilot.press("enter")
        wait = app.screen.query_one(WaitStatus)
        await until(pilot, lambda: wait.has_class("waiting") and time.parked == 3.0)
        assert "rate limited: retrying in 3 s" in str(wait.render())
        for now_shown in ("2", "1"):
            time.now += 1.0
            await until(pilot, lambda now_shown=now_shown: f"retrying in {now_shown} s" in str(wait.render()))
            assert wait.has_class("waiting") and not messages(app, "assistant")
        time.release()
        await until(pilot, lambda: messages(app, "assistant") and not app.chat.running)
        assert not wait.has_class("waiting")
        assert len(creates(service)) == 2  # the 429, then the retry
        log = log_text(app)
        assert "rate limited" in log and "retry 1/" in log and "COMPLETED in" in log


async def test_a_damaged_history_in_demo_mode_exits_with_a_message(tmp_path):
    from stackspot_tui.store import HistoryCorruptError

    def broken(demo):
        raise HistoryCorruptError(tmp_path / "index" / "0.json", "not valid JSON")

    app = StackSpotApp(Settings(data_dir=tmp_path), demo=True, backend_factory=broken)
    async with app.run_test() as pilot:
        await pilot.pause()
    assert app.return_code == 1


async def test_the_transcript_follows_new_messages_until_the_user_scrolls_up(tmp_path):
    service = make_service(tmp_path, duration=0.6)
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(100, 24)) as pilot:
        for _n in range(4):
            await send(pilot, app, "\n".join(f"line {i}" for i in range(12)))
        transcript = app.chat.transcript
        await pilot.pause()
        assert transcript.max_scroll_y > 0 and transcript.scroll_y == transcript.max_scroll_y  # followed
        app.screen.query_one(PromptInput).load_text("one more")
        service.time.hold()
        await pilot.press("enter")  # sending scrolls to the new prompt
        await until(pilot, lambda: app.chat.running)
        transcript.scroll_home(animate=False)  # the user scrolls up to read while it runs
        service.time.release()
        await until(pilot, lambda: not app.chat.running and len(messages(app, "assistant")) == 5)
        await pilot.pause()
        assert transcript.scroll_y == 0  # the answer did not pull the view down
        transcript.scroll_end(animate=False)
        await pilot.pause()
        await send(pilot, app, "back at the bottom")
        await pilot.pause()
        assert transcript.scroll_y == transcript.max_scroll_y  # following again


async def test_a_slug_stackspot_refuses_is_refused_in_the_app(service, tmp_path):
    app = make_app(service, tmp_path, slug="bad slug")  # from --slug or the config
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one(PromptInput).load_text("hello")
        await pilot.press("enter")
        await pilot.pause()
        assert app.is_running and app.chat.conversation is None and not creates(service)
        assert app.screen.query_one(PromptInput).text == "hello"  # the prompt is kept
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, TargetPicker)
        await pilot.press(*"a/b", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TargetPicker)  # refused: the picker stays open
        assert service.store.list_conversations() == []
