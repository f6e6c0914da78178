"""Pilot tests for the history flows: open and continue, re-attach, search, rename/archive/delete, export."""

from __future__ import annotations

import pytest
from test_tui import creates, make_app, make_service, messages, send, until

from stackspot_tui.store import HistoryStore
from stackspot_tui.tui.chat import ChatScreen
from stackspot_tui.tui.history import ConversationsScreen
from stackspot_tui.tui.screens import ConfirmScreen, TextPrompt
from stackspot_tui.tui.widgets import PromptInput


@pytest.fixture
def service(tmp_path):
    return make_service(tmp_path, duration=0.2)


async def seed(service, slug: str, prompts: list[str]) -> str:
    conversation = service.new_conversation(slug)
    for prompt in prompts:
        await service.send(conversation.id, prompt)
    return conversation.id


def listed(screen: ConversationsScreen) -> list[str]:
    """The conversation ids the list shows, top to bottom."""
    return [screen.results.get_option_at_index(i).id.split(":")[0] for i in range(screen.results.option_count)]


async def test_open_a_past_conversation_and_continue_it(service, tmp_path):
    old = await seed(service, "code-review", ["the zebra parser"])
    conversation_id = service.store.get_conversation(old).conversation_id
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+l")
        assert isinstance(app.screen, ConversationsScreen)
        await pilot.press("enter")  # first row: the newest conversation
        await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.chat.conversation is not None)
        assert app.chat.conversation.id == old
        assert [m.text for m in messages(app, "user")] == ["the zebra parser"]
        await send(pilot, app, "and the follow-up")
    assert creates(service)[-1]["query"]["conversation_id"] == conversation_id
    assert [t.prompt for t in service.store.turns(old)] == ["the zebra parser", "and the follow-up"]


async def test_turns_left_running_elsewhere_complete_in_the_background_at_start(service, tmp_path):
    conversation = service.new_conversation("code-review")
    turn = service.store.add_turn(conversation.id, "left running", "left running")
    execution_id = await service.client.create_execution("code-review", "left running")
    service.store.update_turn(conversation.id, turn.seq, execution_id=execution_id, status="CREATED")
    app = make_app(service, tmp_path)  # opens on a new conversation, not that one
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: service.store.get_turn(conversation.id, turn.seq).status == "COMPLETED")
    assert len(creates(service)) == 1


async def test_search_finds_an_old_answer_and_opens_it_at_the_match(service, tmp_path):
    target = await seed(service, "echo", ["nothing here", "the word is xylophone", "later turn"])
    await seed(service, "echo", ["another conversation"])
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+l")
        await pilot.press(*"xylophone")
        screen = app.screen

        def option_ids():
            return [screen.results.get_option_at_index(i).id for i in range(screen.results.option_count)]

        await until(pilot, lambda: f"{target}:1:prompt" in option_ids())  # the search runs off the UI thread
        ids = option_ids()
        screen.results.highlighted = ids.index(f"{target}:1:prompt")
        await pilot.press("down", "up")  # focus moves into the list; keep the hit highlighted
        screen.results.highlighted = ids.index(f"{target}:1:prompt")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.chat.conversation is not None)
        assert app.chat.conversation.id == target
        hit = app.screen.query_one(".hit")
        assert hit.seq == 1 and "xylophone" in hit.text  # shown and marked
        assert app.focused is app.screen.prompt  # typing goes to the prompt


async def test_rename_archive_delete_persist_across_restarts(service, tmp_path):
    keep = await seed(service, "echo", ["keep me"])
    drop = await seed(service, "echo", ["drop me"])
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+l")
        screen = app.screen
        order = listed(screen)
        screen.results.highlighted = order.index(keep)
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, TextPrompt)
        app.screen.query_one("Input").value = "Renamed one"
        await pilot.press("enter")
        await until(pilot, lambda: "Renamed one" in str(screen.results.get_option_at_index(order.index(keep)).prompt))
        screen.results.highlighted = order.index(keep)
        await pilot.press("ctrl+a")  # archive
        await until(pilot, lambda: screen.results.option_count == 1)
        screen.results.highlighted = 0
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: screen.results.option_count == 0)
    reopened = HistoryStore(service.store.root)
    archived = reopened.list_conversations(archived=True)
    assert [(c.id, c.title) for c in archived] == [(keep, "Renamed one")]
    assert reopened.list_conversations() == []
    assert drop not in [c.id for c in reopened.list_conversations(archived=None)]


async def test_a_slow_delete_leaves_the_app_responsive_and_a_failed_one_says_why(service, tmp_path, monkeypatch):
    """History writes run off the UI thread: a delete waiting on another process's lock does not
    freeze typing, and a write that fails is a notification, not a crash."""
    import threading

    from stackspot_tui.store import HistoryError

    conv = await seed(service, "echo", ["slow to delete"])
    other = await seed(service, "echo", ["cannot be deleted"])
    store_delete = service.store.delete_conversation
    may_go_on = threading.Event()

    def held_delete(conv_id):
        if conv_id == other:
            raise HistoryError("the history is locked by another stackspot-tui (waited 5 s)")
        if not may_go_on.wait(5):  # on the UI thread this wait would block the typing below
            raise HistoryError("never released")
        store_delete(conv_id)

    monkeypatch.setattr(service.store, "delete_conversation", held_delete)
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+l")
        screen = app.screen
        screen.results.highlighted = listed(screen).index(conv)
        await pilot.press("ctrl+d", "y")
        await pilot.press("s", "l", "o")  # the delete is still waiting: typing goes on
        assert screen.query_one("#search").value == "slo" and not may_go_on.is_set()
        may_go_on.set()
        await until(pilot, lambda: conv not in [c.id for c in service.store.list_conversations()])
        screen.query_one("#search").value = ""
        await until(pilot, lambda: screen.results.option_count == 1)
        screen.results.highlighted = 0
        await pilot.press("ctrl+d", "y")
        await until(pilot, lambda: any("locked by another" in str(n.message) for n in app._notifications))
        assert isinstance(app.screen, ConversationsScreen) and screen.results.option_count == 1


async def test_delete_a_single_turn(service, tmp_path):
    conv = await seed(service, "echo", ["one", "two"])
    app = make_app(service, tmp_path, conversation_id=conv)
    async with app.run_test(size=(120, 40)) as pilot:
        messages(app, "user")[0].focus()
        await pilot.press("delete")
        await pilot.press("y")
        await until(pilot, lambda: [m.text for m in messages(app, "user")] == ["two"])
    assert [t.prompt for t in service.store.turns(conv)] == ["two"]


async def test_export_from_the_list_and_the_palette(service, tmp_path):
    from dataclasses import replace

    from stackspot_tui.config import Settings
    from stackspot_tui.tui.screens import ExportScreen

    conv = await seed(service, "echo", ["<script>alert(1)</script>"])
    settings = replace(Settings(data_dir=tmp_path), export_dir=tmp_path)
    app = make_app(service, tmp_path, conversation_id=conv, settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        app.chat.export_current("html")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        await pilot.press("enter")  # the offered place: export_dir/<id>.html
        await until(pilot, lambda: (tmp_path / f"{conv}.html").exists())
        await pilot.press("ctrl+l")
        await pilot.press("ctrl+f")  # md -> json
        app.screen.results.highlighted = 0
        await pilot.press("ctrl+x")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / f"{conv}.json").exists())
    html = (tmp_path / f"{conv}.html").read_text()
    assert "&lt;script&gt;" in html and "<script>" not in html


async def test_ctrl_e_loads_earlier_turns_in_order(service, tmp_path, monkeypatch):
    from stackspot_tui.tui import chat

    monkeypatch.setattr(chat, "RECENT_TURNS", 3)  # a long conversation, in miniature
    conv = await seed(service, "echo", [f"prompt {n}" for n in range(7)])
    app = make_app(service, tmp_path, conversation_id=conv)

    def shown() -> list[str]:
        return [m.text for m in messages(app, "user")]

    def note() -> str:
        found = app.screen.query("#earlier")
        return str(found.first().render()) if found else ""

    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: shown() == ["prompt 4", "prompt 5", "prompt 6"])
        assert note() == "4 earlier turns not shown · ctrl+e loads them"
        await pilot.press("ctrl+e")
        assert shown() == [f"prompt {n}" for n in range(1, 7)]
        assert note() == "1 earlier turn not shown · ctrl+e loads them"
        await pilot.press("ctrl+e")
        assert shown() == [f"prompt {n}" for n in range(7)] and note() == ""
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("draft")
        prompt.move_cursor((0, 0))
        await pilot.press("ctrl+e")  # nothing earlier: the key is the prompt's end-of-line again
        assert shown() == [f"prompt {n}" for n in range(7)] and prompt.cursor_location == (0, 5)
