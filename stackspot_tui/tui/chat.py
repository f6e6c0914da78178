"""The conversation screen: transcript, live progress log, prompt."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from ..engine import (
    AnswerDelta,
    Backend,
    Conversation,
    Event,
    ExecutionStarted,
    ExportWriteError,
    FirstToken,
    HistoryError,
    Progressed,
    RequestSent,
    Retrying,
    StackSpotError,
    Turn,
    TurnFinished,
    answer_text,
)
from ..progress import ProgressLine, progress_lines, seconds, stored_agent_lines, stored_step_lines
from ..textsafe import visible
from .screens import Pick
from .stream import StreamingAnswer
from .widgets import ConversationBar, MessageView, ProgressLog, PromptInput, WaitStatus, turn_messages

#: turns shown when a conversation opens; older ones load on demand
RECENT_TURNS = 20


class ChatScreen(Screen):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel run", id="cancel"),
        Binding("ctrl+n", "new_conversation", "New", id="new_conversation"),
        Binding("ctrl+o", "pick_slug", "Quick command / agent", id="pick_slug"),
        Binding("ctrl+r", "copy_answer", "Copy answer", id="copy_answer"),
        Binding("ctrl+b", "copy_code", "Copy code", id="copy_code"),
        Binding("ctrl+g", "copy_conversation_id", "Copy conv. id", show=False, id="copy_conversation_id"),
        Binding("c", "copy_message", "Copy message", show=False, id="copy_message"),
        # Priority: the prompt has focus and a TextArea takes ctrl+e (end of line) for itself;
        # check_action hands the key back to it when no earlier turn is hidden.
        Binding("ctrl+e", "load_earlier", "Earlier turns", show=False, id="load_earlier", priority=True),
        Binding("ctrl+l", "conversations", "Conversations", id="conversations"),
        Binding("delete", "delete_turn", "Delete turn", show=False, id="delete_turn"),
    ]

    def __init__(
        self,
        backend: Backend,
        *,
        slug: str | None,
        conversation_id: str | None,
        demo: bool,
        agent_id: str | None = None,
    ):
        super().__init__()
        self.backend = backend
        self.slug = None if agent_id else slug
        self.agent_id = agent_id  # chatting with an agent instead of a quick command
        self._streaming: StreamingAnswer | None = None  # the answer arriving, for an agent turn
        self.demo = demo
        self.conversation: Conversation | None = None
        self._initial_conversation = conversation_id
        self._turn_worker: Worker | None = None
        self._running_prompt = ""
        self._first_shown_seq = 0

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ConversationBar(id="bar")
        with Horizontal(id="main"):
            with Vertical(id="chat"):
                yield VerticalScroll(id="transcript")
                yield PromptInput(id="prompt")
            with Vertical(id="side"):
                yield Static(Text("Execution progress", style="bold"), id="side-title")
                yield ProgressLog(id="log")
                yield WaitStatus(id="wait")
        yield Footer()

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    @property
    def log_view(self) -> ProgressLog:
        return self.query_one(ProgressLog)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    def on_mount(self) -> None:
        self.transcript.anchor()
        if self._initial_conversation:
            self.open_conversation(self._initial_conversation)
        else:
            self._refresh_bar()
            self._welcome()
        self.prompt.focus()

    def _welcome(self) -> None:
        tip = "Type a prompt and press Enter. F1 lists every key."
        if self.agent_id:
            tip = f"Chat with agent {visible(self.agent_id)}: type a prompt and press Enter; Esc stops an answer."
        elif not self.slug:
            tip = "Choose a quick command or an agent with ctrl+o, then type a prompt. F1 lists every key."
        self.transcript.mount(Static(Text(tip, style="dim"), classes="tip"))

    def _refresh_bar(self) -> None:
        conversation = self.conversation
        self.query_one(ConversationBar).show(
            slug=self.slug,
            agent_id=self.agent_id,
            conversation_id=conversation.conversation_id if conversation else None,
            demo=self.demo,
            title=conversation.title if conversation else "",
        )

    # -- opening conversations ----------------------------------------------------------------

    def open_conversation(self, conv_id: str, *, focus_seq: int | None = None) -> None:
        """Show a stored conversation, its progress history, and re-attach what was left running."""
        if self.running:
            self.notify("A turn is running: cancel it (Esc) before switching.", severity="warning")
            return
        conversation = self.backend.conversation(conv_id)
        self.conversation = conversation
        self.slug = conversation.slug or None
        self.agent_id = conversation.agent_id
        first = max(0, conversation.next_seq - RECENT_TURNS)
        if focus_seq is not None:
            first = min(first, focus_seq)
        turns = self.backend.turns(conv_id, start=first)
        self._first_shown_seq = first
        self.transcript.remove_children()
        self.log_view.clear()
        if first > 0:
            self.transcript.mount(Static(self._earlier_note(first), id="earlier"))
        for turn in turns:
            self.transcript.mount_all(turn_messages(turn))
            self._log_history(turn)
        self.prompt.set_history([t.prompt for t in turns])
        self._refresh_bar()
        if focus_seq is not None:
            self._scroll_to_seq(focus_seq)
        else:
            self.transcript.anchor()
        self._reattach_next()

    def _scroll_to_seq(self, seq: int) -> None:
        for view in self.transcript.query(MessageView):
            if view.role == "user" and view.note == f"turn {seq + 1}":
                self.transcript.release_anchor()
                self.call_after_refresh(view.scroll_visible, top=True, animate=False)
                view.focus()
                return

    def _log_history(self, turn: Turn) -> None:
        log = self.log_view
        log.heading(
            f"turn {turn.seq + 1} · {turn.execution_id or ('agent ' + turn.agent_id if turn.agent_id else 'not sent')}"
        )
        for line in [*stored_step_lines(turn.steps), *stored_agent_lines(turn)]:
            log.add(line)
        level = "ok" if turn.status == "COMPLETED" else ("warn" if turn.needs_reattach else "error")
        duration = f" in {seconds(turn.duration)}" if turn.duration is not None else ""
        log.add(ProgressLine(f"{turn.status}{duration}", level))

    @staticmethod
    def _earlier_note(hidden: int) -> Text:
        return Text(f"{hidden} earlier turn(s) not shown · ctrl+e loads them", style="dim")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "load_earlier":
            return self.conversation is not None and self._first_shown_seq > 0
        return True

    def action_load_earlier(self) -> None:
        if not self.conversation or self._first_shown_seq == 0:
            return
        start = max(0, self._first_shown_seq - RECENT_TURNS)
        turns = self.backend.turns(self.conversation.id, start=start, limit=self._first_shown_seq - start)
        anchor = self.transcript.children[1] if len(self.transcript.children) > 1 else None
        for turn in turns:
            self.transcript.mount_all(turn_messages(turn), before=anchor)
        self._first_shown_seq = start
        if start == 0:
            self.query("#earlier").remove()
        else:
            self.query_one("#earlier", Static).update(self._earlier_note(start))

    # -- sending ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._turn_worker is not None and self._turn_worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        message.stop()
        if self.running:
            self.app.bell()
            self.notify("A turn is still running: wait, or cancel it with Esc.", severity="warning")
            return
        if not self.slug and not self.agent_id:
            self.action_pick_slug()
            return
        prompt = message.text
        if self.conversation is None:
            try:
                self.conversation = self.backend.new_conversation(self.slug or "", agent_id=self.agent_id)
            except StackSpotError as exc:  # a slug StackSpot would refuse (from --slug or the config)
                self.notify(visible(str(exc)), severity="error")
                return
        self.query(".tip").remove()
        self.transcript.mount(
            MessageView("user", prompt, note=f"turn {self.conversation.next_seq + 1}", seq=self.conversation.next_seq)
        )
        self.transcript.anchor()
        self.prompt.prompt_history.append(prompt)
        self.prompt.clear()
        self._running_prompt = prompt
        self._set_busy(True)
        self._turn_worker = self._send(self.conversation.id, prompt, self.slug)

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def _send(self, conv_id: str, prompt: str, slug: str | None) -> Turn:
        return await self.backend.send(conv_id, prompt, slug=slug, on_event=self.on_engine_event)

    def _start_reattach(self, turn: Turn) -> None:
        self._running_prompt = ""
        self._set_busy(True)
        self._turn_worker = self._reattach(turn.conversation, turn.seq)

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def _reattach(self, conv_id: str, seq: int) -> Turn:
        self.log_view.heading(f"turn {seq + 1} · re-attaching")
        return await self.backend.reattach(conv_id, seq, on_event=self.on_engine_event)

    def on_engine_event(self, event: Event) -> None:
        if isinstance(event, AnswerDelta):
            if self._streaming is not None:
                self._streaming.feed(event.text)
            return  # a quick command's result is shown when its turn ends
        if isinstance(event, RequestSent):
            self._streaming = StreamingAnswer(seq=event.turn.seq)
            self.transcript.mount(self._streaming)
            self.conversation = self.backend.conversation(event.turn.conversation)
            self._refresh_bar()  # the conversation id is known from the start
        for line in progress_lines(event):
            self.log_view.add(line)
        wait = self.query_one(WaitStatus)
        if isinstance(event, Retrying):
            what = "rate limited" if event.notice.reason == "rate_limited" else event.notice.reason.replace("_", " ")
            wait.start(what, event.notice.delay)
        elif isinstance(event, (Progressed, TurnFinished, ExecutionStarted, FirstToken)):
            wait.stop()
        if isinstance(event, (Progressed, TurnFinished)):
            self.conversation = self.backend.conversation(event.turn.conversation)
            self._refresh_bar()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._turn_worker or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self._set_busy(False)
        self.query_one(WaitStatus).stop()
        self.log_view.flush(everything=True)
        if event.state == WorkerState.SUCCESS:
            if event.worker.result is not None:
                self._show_finished(event.worker.result)
        elif event.state == WorkerState.CANCELLED:
            streamed = self._end_stream("stopped · the answer so far is kept")
            if streamed is None:
                self.log_view.add(
                    ProgressLine("cancelled: stopped polling (the execution may still run on StackSpot)", "warn")
                )
                self.transcript.mount(MessageView("error", "cancelled", note="CANCELLED"))
            if self._running_prompt and not self.prompt.text and not streamed:
                self.prompt.load_text(self._running_prompt)  # give the prompt back to edit or resend
                self.prompt.move_cursor(self.prompt.document.end)
        else:
            self._end_stream("ERROR")
            message = f"{type(event.worker.error).__name__}: {event.worker.error}"
            self.log_view.add(ProgressLine(message, "error"))
            self.transcript.mount(MessageView("error", message, note="ERROR"))
        # No re-anchoring here: a user who scrolled up to read stays where they are.
        self.prompt.focus()
        self._reattach_next()

    def _end_stream(self, note: str) -> str | None:
        """Close the streaming answer, if any; the text it showed."""
        streaming, self._streaming = self._streaming, None
        if streaming is None:
            return None
        streaming.finish(note)
        return streaming.text

    def _show_finished(self, turn: Turn) -> None:
        streaming = self._streaming
        note = turn.status + (" · incomplete" if turn.incomplete else "")
        if streaming is not None and (streaming.is_large or turn.result is None):
            # A huge answer reads better in the plain view; an empty one is not worth a message.
            self._end_stream(note)
            streaming.remove()
            streaming = None
        if streaming is not None:
            self._end_stream(note)
        elif turn.result is not None:
            self.transcript.mount(MessageView("assistant", answer_text(turn), note=note, markdown=True, seq=turn.seq))
        if turn.status != "COMPLETED":
            text = turn.error or turn.status
            if turn.is_agent and turn.result:
                text += "\nThe answer above is what arrived before that; it is kept in the history."
            if turn.needs_reattach:
                text += "\nThe execution may still run on StackSpot: reopen this conversation or run `stackspot-tui resume`."
            self.transcript.mount(MessageView("error", text, note=turn.status, seq=turn.seq))

    def _reattach_next(self) -> None:
        if self.conversation is None or self.running:
            return
        busy_elsewhere: set[tuple[str, int]] = getattr(self.app, "reattaching", set())
        for seq in self.backend.conversation(self.conversation.id).pending:
            turn = self.backend.turn(self.conversation.id, seq)
            if turn.needs_reattach and not turn.error and (turn.conversation, seq) not in busy_elsewhere:
                self._start_reattach(turn)  # one at a time; the next is picked up when it ends
                return

    def _set_busy(self, busy: bool) -> None:
        # The prompt stays editable: the next question can be typed while an answer arrives.
        self.prompt.set_class(busy, "busy")
        stop = "Esc stops the answer" if self.agent_id else "Esc cancels"
        self.query_one("#side-title", Static).update(
            Text(f"Progress · running, {stop}" if busy else "Progress", style="bold")
        )

    def action_cancel(self) -> None:
        if self.running and self._turn_worker is not None:
            self._turn_worker.cancel()

    # -- conversations and quick commands ------------------------------------------------------

    def action_new_conversation(self) -> None:
        if self.running:
            self.notify("A turn is running: cancel it (Esc) first.", severity="warning")
            return
        self.conversation = None
        self.transcript.remove_children()
        self.log_view.clear()
        self.prompt.set_history([])
        self._refresh_bar()
        self._welcome()
        self.prompt.focus()

    def action_pick_slug(self) -> None:
        self.app.pick_slug(self._slug_chosen)  # type: ignore[attr-defined]

    def _slug_chosen(self, pick: Pick | None) -> None:
        if pick is None or not pick.id:
            return
        slug, agent_id = (None, pick.id) if pick.kind == "agent" else (pick.id, None)
        if slug == self.slug and agent_id == self.agent_id:
            return
        kind_changed = (agent_id is None) != (self.agent_id is None)
        self.slug, self.agent_id = slug, agent_id
        if self.conversation is not None and (self.conversation.turn_count or kind_changed or agent_id):
            # A conversation belongs to one quick command or one agent: a new one starts here.
            self.action_new_conversation()
        elif self.conversation is not None and slug:
            self.conversation = self.backend.set_slug(self.conversation.id, slug)
        self._refresh_bar()
        self.query(".tip").remove()
        self._welcome()
        self.prompt.focus()

    def action_conversations(self) -> None:
        from .history import ConversationsScreen

        self.app.push_screen(ConversationsScreen(self.backend, Path.cwd()), self._conversation_chosen)

    def _conversation_chosen(self, choice: tuple[str, int | None] | None) -> None:
        if choice is not None:
            self.open_conversation(choice[0], focus_seq=choice[1])
        elif self.conversation is not None:
            try:
                self.conversation = self.backend.conversation(self.conversation.id)
                self._refresh_bar()
            except HistoryError:  # deleted from the list
                self.action_new_conversation()

    def export_current(self, fmt: str) -> None:
        if self.conversation is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        try:
            path = self.backend.export(self.conversation.id, fmt, Path.cwd())
        except ExportWriteError as exc:  # unwritable directory: say so, keep the app
            self.notify(str(exc), severity="error")
            return
        self.notify(f"Exported to {path}")

    def action_delete_turn(self) -> None:
        from .screens import ConfirmScreen

        focused = self.focused
        if not isinstance(focused, MessageView) or focused.seq is None or self.conversation is None or self.running:
            return
        conv_id, seq = self.conversation.id, focused.seq

        def answered(yes: bool | None) -> None:
            if yes:
                self.backend.delete_turn(conv_id, seq)
                self.open_conversation(conv_id)

        self.app.push_screen(ConfirmScreen(f"Delete turn {seq + 1} of this conversation?"), answered)

    # -- copy ------------------------------------------------------------------------------------

    def _answers(self) -> list[MessageView]:
        return [view for view in self.transcript.query(MessageView) if view.role == "assistant"]

    def _copy(self, text: str, what: str) -> None:
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {what} ({len(text)} characters)")

    def action_copy_answer(self) -> None:
        answers = self._answers()
        if not answers:
            self.notify("No answer to copy yet.", severity="warning")
            return
        self._copy(answers[-1].text, "the last answer")

    def action_copy_message(self) -> None:
        focused = self.focused
        if isinstance(focused, MessageView):
            self._copy(focused.text, "the message")

    def action_copy_code(self) -> None:
        focused = self.focused
        sources = [focused] if isinstance(focused, MessageView) else list(reversed(self._answers()))
        for view in sources:
            blocks = view.code_blocks()
            if blocks:
                self._copy(blocks[-1], "the code block")
                return
        self.notify("No code block to copy.", severity="warning")

    def action_copy_conversation_id(self) -> None:
        if self.conversation and self.conversation.conversation_id:
            self._copy(self.conversation.conversation_id, "the conversation id")
        else:
            self.notify("No StackSpot conversation id yet: it comes with the first answer.", severity="warning")
