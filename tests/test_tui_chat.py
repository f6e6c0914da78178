"""Pilot tests: the chat tells the truth and keeps the user's place.

Quitting mid-run, turns left running, labels, focus after dialogs, keys named as bound, the
picker's typing, help, exports, answers shown as written, counts, resize and the spinner.
Executions run on the app tests' fake time, held by the test to keep a turn running; the
spinner reads a fake clock.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path

from test_tui import creates, log_text, make_app, make_service, messages, send, until
from textual.widgets._footer import FooterKey

from stackspot_tui.config import Settings
from stackspot_tui.tui.chat import ChatScreen
from stackspot_tui.tui.history import ConversationsScreen
from stackspot_tui.tui.screens import ConfirmScreen, ExportScreen, HelpScreen, QuitScreen, TargetPicker
from stackspot_tui.tui.widgets import KeyFooter, ProgressLog, PromptInput, RunStatus


def screen_lines(app) -> list[str]:
    """The screen as lines of text (from the SVG screenshot: what a person would read)."""
    svg = app.export_screenshot()
    lines: dict[int, list[str]] = {}
    for match in re.finditer(r'<text [^>]*clip-path="url\(#terminal-\d+-line-(\d+)\)"[^>]*>(.*?)</text>', svg, re.S):
        lines.setdefault(int(match.group(1)), []).append(html.unescape(match.group(2)).replace("\xa0", " "))
    return ["".join(parts) for _, parts in sorted(lines.items())]


async def start_turn(pilot, app, text: str) -> None:
    app.screen.query_one(PromptInput).load_text(text)
    await pilot.press("enter")
    await until(pilot, lambda: "started execution" in log_text(app))


async def test_quitting_mid_run_asks_and_leaves_the_turn_to_fetch_next_time(tmp_path):
    service = make_service(tmp_path)
    service.time.hold(after=1)  # one poll, then the turn waits for the test
    app = make_app(service, tmp_path, demo=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await start_turn(pilot, app, "finish it later")
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen) and "fetched the next time" in str(
            app.screen.query_one("Static").render()
        )
        await pilot.press("escape")  # keep watching
        assert isinstance(app.screen, ChatScreen) and app.chat.running and app.is_running
        assert app.focused is app.screen.query_one(PromptInput)
        await pilot.press("ctrl+q")
        await pilot.press("enter")  # the default: quit, finish it later
        await until(pilot, lambda: not app.is_running)
    [turn] = service.store.turns(service.store.list_conversations()[0].id)
    assert turn.execution_id and turn.resumes_by_itself and turn.status in ("CREATED", "RUNNING")
    service.time.release()
    again = make_app(service, tmp_path, slug=None, demo=False)  # a plain start opens it and fetches it
    async with again.run_test(size=(100, 30)) as pilot:
        # the placeholder goes once the answer is in (a removal lands a message later)
        await until(pilot, lambda: messages(again, "assistant") and not messages(again, "status"))
        assert not again.chat.running and not messages(again, "error")
        assert "finish it later" in messages(again, "assistant")[-1].text
    assert len(creates(service)) == 1


async def test_a_turn_left_running_shows_a_placeholder_then_its_answer(tmp_path):
    service = make_service(tmp_path)
    conversation = service.new_conversation("code-review")
    turn = service.store.add_turn(conversation.id, "left running", "left running")
    execution_id = await service.client.create_execution("code-review", "left running")
    service.store.update_turn(conversation.id, turn.seq, execution_id=execution_id, status="CREATED")
    service.time.hold()  # the re-attached turn waits for the test
    app = make_app(service, tmp_path, conversation_id=conversation.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.chat.running)
        [status] = messages(app, "status")
        assert status.who == "Running" and "Fetching the answer" in status.text  # not "Error CREATED"
        service.time.release()
        await until(pilot, lambda: messages(app, "assistant") and not messages(app, "status"))
        assert not app.chat.running and not messages(app, "error")  # replaced, not left above
        assert [m.text for m in messages(app, "user")] == ["left running"]
    assert len(creates(service)) == 1  # nothing re-sent
    assert service.store.get_turn(conversation.id, turn.seq).status == "COMPLETED"


async def test_a_crash_before_the_execution_id_reads_may_have_been_sent(tmp_path):
    service = make_service(tmp_path)
    conversation = service.new_conversation("echo")
    service.store.add_turn(conversation.id, "sent or not?", "sent or not?")  # the app died right here
    app = make_app(service, tmp_path, conversation_id=conversation.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        [status] = messages(app, "status")
        assert status.who == "May have been sent" and "may then run it twice" in status.text
        assert "may have been sent" in log_text(app)
        status.focus()
        await pilot.press("r")  # send it again: asks first
        assert isinstance(app.screen, ConfirmScreen) and "may run it twice" in app.screen.question
        await pilot.press("y")
        await until(pilot, lambda: messages(app, "assistant") and not app.chat.running)
        assert app.focused is app.screen.query_one(PromptInput)
    assert [t.prompt for t in service.store.turns(conversation.id)] == ["sent or not?", "sent or not?"]


async def test_an_odd_poll_answer_is_retried_and_the_turn_completes(tmp_path):
    """A gateway's HTML page with status 200 on the first polls: retried, never the end of the turn."""
    service = make_service(tmp_path)
    app = make_app(service, tmp_path, slug="sim-html-poll")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "through a hiccup")
        assert "text/html" in log_text(app) and "COMPLETED" in log_text(app)
        assert messages(app, "assistant") and not messages(app, "error")
    assert len(creates(service)) == 1


async def test_odd_poll_answers_beyond_the_retry_budget_leave_the_turn_fetchable(tmp_path):
    service = make_service(tmp_path)
    app = make_app(service, tmp_path, slug="sim-malformed")
    async with app.run_test(size=(120, 40)) as pilot:
        await start_turn(pilot, app, "behind a broken gateway")
        # the placeholder gives way to what became of the turn (a removal lands a message later)
        await until(pilot, lambda: [m.who for m in messages(app, "status")] == ["Lost track"])
        [status] = messages(app, "status")
        assert not app.chat.running and "f fetches the answer" in status.text
        assert not messages(app, "error")  # not a final ERROR: StackSpot may still answer
        [turn] = service.store.turns(app.chat.conversation.id)
        assert turn.needs_reattach and turn.status != "ERROR"
    assert len(creates(service)) == 1


async def test_focus_returns_to_the_prompt_after_a_dialog_and_stray_keys_reach_it(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "one")
        await send(pilot, app, "two")
        prompt = app.screen.query_one(PromptInput)
        messages(app, "user")[0].focus()
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: [m.text for m in messages(app, "user")] == ["two"])
        await pilot.pause()
        assert app.focused is prompt
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.focused is prompt
        messages(app, "assistant")[0].focus()
        await pilot.press(*"hello")  # not a key of the message: typed into the prompt
        assert prompt.text == "hello" and app.focused is prompt


async def test_delete_on_an_error_message_deletes_its_turn(tmp_path):
    service = make_service(tmp_path)
    app = make_app(service, tmp_path, slug="sim-failure")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "this fails")
        conv = app.chat.conversation.id
        [error] = messages(app, "error")
        error.focus()
        await pilot.press("delete")  # the key works on any message of a turn, not only the prompt
        assert isinstance(app.screen, ConfirmScreen) and "Delete turn 1" in app.screen.question
        await pilot.press("y")
        await until(pilot, lambda: not messages(app, "error") and not messages(app, "user"))
        assert app.focused is app.screen.query_one(PromptInput)
    assert service.store.turns(conv) == []


async def test_the_focused_message_stands_out(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "look at me")
        user, answer = messages(app, "user")[0], messages(app, "assistant")[0]
        unfocused = answer.styles.background
        answer.focus()
        await pilot.pause()
        assert answer.has_focus and answer.styles.background != unfocused
        assert answer.styles.background != user.styles.background


async def test_ctrl_e_works_from_the_prompt_and_hints_name_the_bound_key(tmp_path):
    service = make_service(tmp_path)
    conversation = service.new_conversation("echo")
    for n in range(23):
        turn = service.store.add_turn(conversation.id, f"turn {n}", f"turn {n}")
        service.store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=f"answer {n}")
    settings = replace(Settings(data_dir=tmp_path), keymap={"load_earlier": "ctrl+y"})
    app = make_app(service, tmp_path, conversation_id=conversation.id, settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        earlier = str(app.screen.query_one("#earlier").render())
        assert "3 earlier turns not shown · ctrl+y loads them" in earlier
        assert app.focused is app.screen.query_one(PromptInput)
        await pilot.press("ctrl+y")
        assert len(messages(app, "user")) == 23 and not app.screen.query("#earlier")
    default = make_app(service, tmp_path, conversation_id=conversation.id)
    async with default.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+e")  # the prompt's own ctrl+e (end of line) does not swallow it
        assert len(messages(default, "user")) == 23


async def test_typing_in_the_picker_always_filters(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, TargetPicker)
        await pilot.press(
            "down", "down"
        )  # the field holds the current slug, selected  # arrows move through the choices…
        await pilot.press(*"echo")  # …and typing still filters, and wins
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.chat.slug == "echo"


async def test_a_question_mark_in_the_prompt_is_typed_and_help_opens_elsewhere(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("w", "h", "y", "question_mark")
        assert app.screen.query_one(PromptInput).text == "why?" and isinstance(app.screen, ChatScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_help_is_grouped_by_screen_with_whole_ids_at_80_columns(service, tmp_path):
    app = make_app(service, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        screen = app.screen
        sections = {row[0] for row in screen.rows}
        assert {"Prompt", "Chat", "Anywhere"} <= sections and any(s.startswith("Conversation list") for s in sections)
        assert any(s.startswith("A focused message") for s in sections)
        ctrl_r = {row[0].split(" (")[0]: row[2] for row in screen.rows if row[1] == "ctrl+r"}
        assert ctrl_r == {"Chat": "Copy answer", "Conversation list": "Rename"}  # one key, two screens, apart
        shown = set()
        for _ in range(12):  # page through the help: every id appears whole on some line
            shown |= {word for line in screen_lines(app) for word in re.findall(r"[\w.:+-]+", line)}
            await pilot.press("pagedown")
        for *_, binding_id in screen.rows:
            assert binding_id.strip("()") in shown, binding_id


async def test_export_asks_where_and_says_the_full_path(service, tmp_path):
    exports = tmp_path / "exports"
    settings = replace(Settings(data_dir=tmp_path), export_dir=exports)
    app = make_app(service, tmp_path, slug="echo", settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "<b>bold?</b>")
        conv = app.chat.conversation.id
        app.chat.export_current("md")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        field = app.screen.query_one("Input")
        assert field.value == str(exports / f"{conv}.md")  # the configured folder, a free name
        await pilot.press("enter")
        await until(pilot, lambda: any(str(exports / f"{conv}.md") in n.message for n in app._notifications))
        app.chat.export_current("md")
        await pilot.pause()
        assert app.screen.query_one("Input").value == str(exports / f"{conv}-1.md")  # never over the first
        app.screen.query_one("Input").value = str(exports / f"{conv}.md")
        await pilot.press("enter")  # taken: refused, the dialog stays
        assert isinstance(app.screen, ExportScreen) and "exists" in str(app.screen.query_one("#problem").render())
        (tmp_path / "a-file").write_text("")
        app.screen.query_one("Input").value = str(tmp_path / "a-file" / "inside.md")
        await pilot.press("enter")  # cannot be written: said in one line, the app goes on
        await until(pilot, lambda: any("cannot create" in n.message for n in app._notifications))
        app.chat.export_current("md")
        await pilot.pause()
        app.screen.query_one("Input").value = str(tmp_path / "elsewhere" / "mine.html")
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "elsewhere" / "mine.html").exists())
        await pilot.press("ctrl+l")
        assert isinstance(app.screen, ConversationsScreen)
        app.screen.results.highlighted = 0
        await pilot.press("ctrl+x")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("escape")  # cancelled: nothing written
        assert isinstance(app.screen, ConversationsScreen)
    assert sorted(p.name for p in exports.iterdir()) == [f"{conv}.md"]


def test_the_default_export_folder_is_the_documents_folder(tmp_path):
    import platformdirs

    assert Settings().export_directory == Path(platformdirs.user_documents_dir())
    assert Settings(export_dir=tmp_path).export_directory == tmp_path


async def test_the_top_bar_shows_the_title_the_local_id_and_the_quick_command_at_100_columns(tmp_path):
    service = make_service(tmp_path)
    app = make_app(service, tmp_path, slug="code-review")
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, app, "Please review the function that parses the configuration file and say what is wrong")
        conversation = app.chat.conversation
        await pilot.pause()
        bar = screen_lines(app)[0]
    assert conversation.id in bar and bar.rstrip().endswith("code-review")  # what the CLI takes: the local id
    assert conversation.conversation_id not in bar  # StackSpot's 26 characters: ctrl+g copies them
    assert "Please review the function" in bar and "…" in bar  # the title gives way first


async def test_html_in_an_answer_is_shown_as_written(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "<script>alert(1)</script> done")
        await pilot.pause()
        shown = [line for line in screen_lines(app) if "<script>alert(1)</script> done" in line]
    assert len(shown) == 3  # the title in the top bar, the prompt and the answer: tags and all


async def test_counts_read_right(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, app, "only one")
        await pilot.press("ctrl+l")
        screen = app.screen
        heading = str(screen.query_one("#heading").render())
        assert heading.startswith("1 conversation ·")
        assert " 1 turn " in str(screen.results.get_option_at_index(0).prompt)


async def test_the_progress_log_rewraps_and_keeps_following_on_resize(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(160, 40)) as pilot:
        for n in range(6):
            await send(pilot, app, f"a prompt long enough to make its progress lines wrap somewhere {n}")
        log = app.screen.query_one(ProgressLog)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y  # following the end
        await pilot.resize_terminal(90, 24)
        await pilot.pause()
        await pilot.pause()
        width = log.scrollable_content_region.width
        assert max(len(line) for line in log.lines) <= width  # re-wrapped: nothing hidden to the right
        assert log.max_scroll_x == 0
        assert log.scroll_y == log.max_scroll_y  # still following
        await send(pilot, app, "and one more")
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y  # new lines still pull it along


async def test_a_layout_elsewhere_leaves_the_progress_logs_scrollbar_alone(service, tmp_path):
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:
        for n in range(8):
            await send(pilot, app, f"a prompt {n}")
        log = app.screen.query_one(ProgressLog)
        await pilot.pause()
        bar = log.vertical_scrollbar
        refreshes: list[object] = []
        refresh = bar.refresh

        def spy(*args, **kwargs):
            refreshes.append(args)
            return refresh(*args, **kwargs)

        bar.refresh = spy  # type: ignore[method-assign]
        app.screen.query_one("#transcript").refresh(layout=True)  # as each append of a streamed answer does
        await pilot.pause()
        assert not refreshes  # it was re-rendered, every line of it, on each layout of the screen
        size = bar.window_virtual_size
        await send(pilot, app, "and one more")
        await pilot.pause()
        assert bar.window_virtual_size > size and log.scroll_y == log.max_scroll_y  # new lines still move it


async def test_a_spinner_and_the_elapsed_time_tick_while_a_turn_runs(tmp_path):
    service = make_service(tmp_path)
    service.time.hold(after=1)
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        status = app.screen.query_one(RunStatus)
        now = [500.0]
        status.clock = lambda: now[0]
        await start_turn(pilot, app, "take your time")
        first = str(status.render())
        now[0] += 12.3
        status.tick()
        later = str(status.render())
        assert later[0] != first[0]  # the spinner moved
        assert "12." in later and "esc: stop" in later
        service.time.release()
        await until(pilot, lambda: not app.chat.running)
        assert str(status.render()) == "Execution progress"  # idle again


async def test_the_ticking_status_repaints_its_line_without_laying_out_the_screen(tmp_path):
    service = make_service(tmp_path)
    service.time.hold(after=1)
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        status = app.screen.query_one(RunStatus)
        await start_turn(pilot, app, "take your time")
        layouts: list[bool] = []
        refresh = status.refresh

        def spy(*regions, layout=False, **kwargs):
            layouts.append(layout)
            return refresh(*regions, layout=layout, **kwargs)

        status.refresh = spy  # type: ignore[method-assign]
        status.tick()
        status.progress("RUNNING", 0.5)
        assert layouts and not any(layouts)  # 10 ticks a second each laid out the streaming transcript
        assert status.size.height == 1
        service.time.release()
        await until(pilot, lambda: not app.chat.running)


async def test_the_footers_keys_are_styled_once_as_they_mount(service, tmp_path, monkeypatch):
    """Each key mounted compact, then was made not compact by its binding to the footer: two
    restyles of every key at each compose of a footer, a fifth of the app's start-up."""
    restyled: list[str] = []
    update = FooterKey.update_node_styles
    monkeypatch.setattr(
        FooterKey, "update_node_styles", lambda self, **kw: (restyled.append(self.key), update(self, **kw))
    )
    app = make_app(service, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        keys = list(app.screen.query(FooterKey))
        palette = [key for key in keys if key.has_class("-command-palette")]
        assert len(keys) > 5 and len(palette) == 1
        assert set(restyled) <= {palette[0].key}  # as Textual styles it: compact, its own
        assert palette[0].compact and palette[0].has_class("-compact")
        assert not any(key.compact or key.has_class("-compact") for key in keys if key not in palette)


async def test_the_footer_follows_focus_and_keeps_its_keys_when_they_stay_the_same(service, tmp_path, monkeypatch):
    """Every focus change recomposed the footer (every key remounted, the screen laid out
    again), twice when two signals came before the recompose, even when the keys shown stayed."""
    composed: list[int] = []
    compose = KeyFooter.compose

    def counted(self):
        composed.append(1)
        yield from compose(self)

    monkeypatch.setattr(KeyFooter, "compose", counted)
    app = make_app(service, tmp_path, slug="echo")
    async with app.run_test(size=(120, 40)) as pilot:

        def shown() -> set[str]:
            return {key.key for key in app.screen.query(FooterKey)}

        await send(pilot, app, "one")
        await send(pilot, app, "two")
        at_prompt = shown()
        user, answer = messages(app, "user")[0], messages(app, "assistant")[0]
        user.focus()
        await until(pilot, lambda: shown() != at_prompt)
        on_a_message = shown()
        assert "delete" in on_a_message and "enter" not in on_a_message and "enter" in at_prompt
        before = len(composed)
        for message in (answer, messages(app, "user")[1], user):  # the same keys on each
            message.focus()
            await pilot.pause()
        assert len(composed) == before and shown() == on_a_message
        app.screen.query_one(PromptInput).focus()
        await until(pilot, lambda: shown() == at_prompt)
        await pilot.pause()
        assert len(composed) == before + 1
