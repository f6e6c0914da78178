"""The conversation screen: transcript, live progress log, prompt."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from ..engine import (
    AnswerDelta,
    Backend,
    Conversation,
    Event,
    ExecutionStarted,
    FirstToken,
    HistoryError,
    Progressed,
    RequestSent,
    Retrying,
    StackSpotError,
    Turn,
    TurnFinished,
    TurnSaved,
)
from ..progress import ProgressLine, progress_lines, seconds, stored_agent_lines, stored_step_lines
from ..textsafe import visible
from ..wording import counted
from .screens import Pick, QuitScreen
from .stream import StreamingAnswer
from .widgets import (
    ConversationBar,
    KeyFooter,
    MessageView,
    ProgressLog,
    PromptInput,
    RunStatus,
    Transcript,
    WaitStatus,
    answer_note,
    live_message,
    outcome_messages,
    turn_messages,
)

#: turns shown when a conversation opens; older ones load on demand
RECENT_TURNS = 20


def _since(iso: str | None) -> float:
    """Seconds since an ISO timestamp of the history (0 when unknown)."""
    if not iso:
        return 0.0
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(UTC) - then).total_seconds())


class ChatScreen(Screen):
    AUTO_FOCUS = "#prompt"
    BINDINGS = [
        Binding("escape", "stop_watching", "Stop", id="cancel"),
        Binding("ctrl+n", "new_conversation", "New", id="new_conversation"),
        Binding("ctrl+o", "pick_slug", "Quick command / agent", id="pick_slug"),
        Binding("ctrl+r", "copy_answer", "Copy answer", id="copy_answer"),
        Binding("ctrl+b", "copy_code", "Copy code", id="copy_code"),
        Binding("ctrl+g", "copy_conversation_id", "Copy StackSpot id", show=False, id="copy_conversation_id"),
        # Priority: the prompt has focus and a TextArea takes ctrl+e (end of line) for itself;
        # check_action hands the key back to it when no earlier turn is hidden.
        Binding("ctrl+e", "load_earlier", "Earlier turns", show=False, id="load_earlier", priority=True),
        Binding("ctrl+l", "conversations", "Conversations", id="conversations"),
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
        self._live: tuple[str, int] | None = None  # (conversation, seq) of the turn being sent or watched
        self._busy = False
        self._stopping = False  # Esc asked to stop watching (quitting leaves the turn to resume)
        self._running_prompt = ""
        self._first_shown_seq = 0

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ConversationBar(id="bar")
        with Horizontal(id="main"):
            with Vertical(id="chat"):
                yield Transcript(id="transcript")
                yield PromptInput(id="prompt", on_submit=self.submit_prompt)
            with Vertical(id="side"):
                yield RunStatus(id="side-title")
                yield ProgressLog(id="log")
                yield WaitStatus(id="wait")
        yield KeyFooter()

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    @property
    def log_view(self) -> ProgressLog:
        return self.query_one(ProgressLog)

    @property
    def run_status(self) -> RunStatus:
        return self.query_one(RunStatus)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    def key(self, binding_id: str) -> str:
        """The key bound to an action, after the user's keymap: hints name what works."""
        return self.app.key_label(binding_id)  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.transcript.anchor()
        if self._initial_conversation:
            self.open_conversation(self._initial_conversation)
        else:
            self._refresh_bar()
            self._welcome()
        self.prompt.focus()
        self.app.input_ready()  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        # Back from any dialog: typing goes to the prompt again.
        self.prompt.focus()

    def _welcome(self) -> None:
        help_key = self.key("help")
        tip = f"Type a prompt and press {self.key('send')}. {help_key} lists every key."
        if self.agent_id:
            tip = (
                f"Chat with agent {visible(self.agent_id)}: type a prompt and press {self.key('send')}; "
                f"{self.key('cancel')} stops an answer. {help_key} lists every key."
            )
        elif not self.slug:
            tip = (
                f"Choose a quick command or an agent with {self.key('pick_slug')}, then type a prompt. "
                f"{help_key} lists every key."
            )
        self.transcript.mount(Static(Text(tip, style="dim"), classes="tip"))

    def _refresh_bar(self) -> None:
        conversation = self.conversation
        self.query_one(ConversationBar).show(
            slug=self.slug,
            agent_id=self.agent_id,
            local_id=conversation.id if conversation else None,
            demo=self.demo,
            title=conversation.title if conversation else "",
            key=self.key,
        )

    # -- opening conversations ----------------------------------------------------------------

    def open_conversation(self, conv_id: str, *, focus_seq: int | None = None) -> None:
        """Show a stored conversation, its progress history, and re-attach what was left running."""
        if self.running:
            self.notify(f"A turn is running: stop watching it ({self.key('cancel')}) first.", severity="warning")
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
            self.transcript.mount(Static(self._earlier_text(first), id="earlier"))
        for turn in turns:
            self.transcript.mount_all(turn_messages(turn, self.key))
            self._log_history(turn)
        self.prompt.set_history([t.prompt for t in turns])
        self._refresh_bar()
        if focus_seq is not None:
            self._scroll_to_seq(focus_seq)
        else:
            self.transcript.anchor()
        self._reattach_next()

    def _earlier_text(self, count: int) -> Text:
        return Text(f"{counted(count, 'earlier turn')} not shown · {self.key('load_earlier')} loads them", style="dim")

    def _scroll_to_seq(self, seq: int) -> None:
        for view in self.transcript.query(MessageView):
            if view.role == "user" and view.seq == seq:
                view.add_class("hit")  # marked, not focused: typing still goes to the prompt
                self.transcript.release_anchor()
                self.call_after_refresh(view.scroll_visible, top=True, animate=False)
                return

    def _log_history(self, turn: Turn) -> None:
        log = self.log_view
        what = turn.execution_id or (f"agent {turn.agent_id}" if turn.agent_id else turn.status_words)
        log.heading(f"turn {turn.seq + 1} · {what}")
        for line in [*stored_step_lines(turn.steps), *stored_agent_lines(turn)]:
            log.add(line)
        level = "ok" if turn.status == "COMPLETED" else ("warn" if turn.fetchable or turn.maybe_sent else "error")
        duration = f" in {seconds(turn.duration)}" if turn.duration is not None else ""
        log.add(ProgressLine(f"{turn.status_words}{duration}", level))

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
            self.transcript.mount_all(turn_messages(turn, self.key), before=anchor)
        self._first_shown_seq = start
        if start == 0:
            self.query("#earlier").remove()
        else:
            self.query_one("#earlier", Static).update(self._earlier_text(start))

    # -- sending ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A turn is being sent or watched. Ends with the engine's TurnFinished, not when the
        worker's state change arrives later: a prompt sent right after the answer is stored is
        accepted, not refused."""
        return self._busy

    def submit_prompt(self, prompt: str) -> bool:
        """The prompt's Enter, called in order with the keys typed before it. True: sent."""
        if self.running and self._live_turn_over():
            # Its end is on disk, and its TurnFinished on the way (the engine writes off the
            # event loop): the next prompt need not wait for it.
            self._end()
        if self.running:
            self.app.bell()
            self.notify(
                f"A turn is still running: wait, or stop watching it with {self.key('cancel')}.", severity="warning"
            )
            return False
        if not self.slug and not self.agent_id:
            self.action_pick_slug()
            return False
        doubtful = self._maybe_sent_with(prompt)
        if doubtful is not None:
            self._confirm_resend(doubtful, clear_prompt=True)
            return False
        return self._start_send(prompt)

    def _maybe_sent_with(self, prompt: str) -> Turn | None:
        """The latest turn of this conversation, if it may have been sent and holds this prompt."""
        if self.conversation is None:
            return None
        conversation = self.backend.conversation(self.conversation.id)
        if not conversation.next_seq:
            return None
        turns = self.backend.turns(conversation.id, start=conversation.next_seq - 1)
        if turns and turns[-1].maybe_sent and turns[-1].prompt == prompt:
            return turns[-1]
        return None

    def _confirm_resend(self, turn: Turn, *, clear_prompt: bool = False) -> None:
        from .screens import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if not yes or self.running:
                return
            if clear_prompt and self.prompt.text == turn.prompt:
                self.prompt.clear()
            self._start_send(turn.prompt)

        question = (
            f"Turn {turn.seq + 1} may already have reached StackSpot: it was never confirmed. "
            "Sending it again may run it twice. Send it again?"
        )
        self.app.push_screen(ConfirmScreen(question, yes="Send again (y)", no="Don't send (n)"), answered)

    def _start_send(self, prompt: str) -> bool:
        """Start a turn; False (and said why) when it cannot start."""
        if self.conversation is None:
            try:
                self.conversation = self.backend.new_conversation(self.slug or "", agent_id=self.agent_id)
            except StackSpotError as exc:  # a slug StackSpot would refuse (from --slug or the config)
                self.notify(visible(str(exc)), severity="error")
                return False
        seq = self.conversation.next_seq
        self.query(".tip").remove()
        self.transcript.mount_all(
            [MessageView("user", prompt, note=f"turn {seq + 1}", seq=seq), live_message(seq)],
        )
        self.transcript.anchor()
        self.prompt.prompt_history.append(prompt)
        self._running_prompt = prompt
        self._live = (self.conversation.id, seq)  # TurnSaved confirms it
        self._begin("sending")
        self._turn_worker = self._send(self.conversation.id, prompt, self.slug)
        return True

    # Not exclusive: a turn whose end is on disk may still be emitting it when the next starts.
    @work(group="turn", exit_on_error=False)
    async def _send(self, conv_id: str, prompt: str, slug: str | None) -> Turn:
        return await self.backend.send(conv_id, prompt, slug=slug, on_event=self.on_engine_event)

    def _start_reattach(self, turn: Turn) -> None:
        self._running_prompt = ""
        self._live = (turn.conversation, turn.seq)
        self._show_outcome(turn, live=True)
        self._begin(turn.status, elapsed=_since(turn.sent_at or turn.created_at))
        self._turn_worker = self._reattach(turn.conversation, turn.seq)

    @work(group="turn", exit_on_error=False)
    async def _reattach(self, conv_id: str, seq: int) -> Turn:
        self.log_view.heading(f"turn {seq + 1} · re-attaching")
        return await self.backend.reattach(conv_id, seq, on_event=self.on_engine_event)

    def on_engine_event(self, event: Event) -> None:
        if isinstance(event, AnswerDelta):
            if self._streaming is not None:
                self._streaming.feed(event.text)
            return  # a quick command's result is shown when its turn ends
        if isinstance(event, RequestSent):
            self._stream_into(event.turn.seq)
            self.conversation = self.backend.conversation(event.turn.conversation)
            self._refresh_bar()  # the conversation id is known from the start
        for line in progress_lines(event):
            self.log_view.add(line)
        wait = self.query_one(WaitStatus)
        if isinstance(event, TurnSaved):
            if self._live is not None and self._live != (event.turn.conversation, event.turn.seq):
                for view in self.transcript.query(MessageView):  # another process took the seq we expected
                    if view.seq == self._live[1]:
                        view.seq = event.turn.seq
            self._live = (event.turn.conversation, event.turn.seq)
            if self.conversation is not None and self.conversation.id == event.conversation.id:
                self.conversation = event.conversation
        elif isinstance(event, Retrying):
            what = "rate limited" if event.notice.reason == "rate_limited" else event.notice.reason.replace("_", " ")
            wait.start(what, event.notice.delay)
        elif isinstance(event, ExecutionStarted):
            wait.stop()
            if self._is_live(event.turn):
                self.run_status.progress(event.turn.status, event.turn.percentage)
        elif isinstance(event, FirstToken):
            wait.stop()
            if self._is_live(event.turn):
                self.run_status.progress("STREAMING", None)
        elif isinstance(event, Progressed):
            wait.stop()
            if self._is_live(event.turn):
                self.run_status.progress(event.execution.status, event.execution.progress.percentage)
        if isinstance(event, (Progressed, TurnFinished)) and self.conversation is not None:
            if event.turn.conversation == self.conversation.id:
                self.conversation = self.backend.conversation(self.conversation.id)
                self._refresh_bar()
        if isinstance(event, TurnFinished):
            if self.running and self._is_live(event.turn):
                self._end()
                self.call_later(self._reattach_next)
            self._show_outcome(event.turn)  # also a late execution id for a turn stopped earlier

    def _live_turn_over(self) -> bool:
        if self._live is None:
            return False
        try:
            return self.backend.turn(*self._live).is_final
        except HistoryError:
            return False

    def _is_live(self, turn: Turn) -> bool:
        return self._live == (turn.conversation, turn.seq)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._turn_worker or event.state not in (WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if not self.running:
            return
        live, stopping = self._live, self._stopping
        self._end()
        if event.state == WorkerState.ERROR:
            message = f"{type(event.worker.error).__name__}: {event.worker.error}"
            self.log_view.add(ProgressLine(message, "error"))
            self.transcript.mount(MessageView("error", message, note="unexpected", seq=live[1] if live else None))
        elif stopping and live is not None:
            self._stopped(*live)
        if self._streaming is not None:  # the worker died under an agent's answer
            self._streaming.finish("stopped · the answer so far is kept")
            self._streaming = None
        self._reattach_next()

    def _stopped(self, conv_id: str, seq: int) -> None:
        """Esc while a turn ran: it goes on at StackSpot; keep what we know of it."""
        try:
            turn = self.backend.detach(conv_id, seq)
        except HistoryError:  # stopped before it was even saved: nothing was sent
            for view in self.transcript.query(MessageView):
                if view.seq == seq:
                    view.remove()
            self._give_prompt_back()
            return
        if turn.maybe_sent:
            self.log_view.add(
                ProgressLine("stopped before StackSpot confirmed the turn: it may have been sent", "warn")
            )
            self._give_prompt_back()  # to edit, or send again after a warning
        else:
            self.log_view.add(
                ProgressLine(
                    f"stopped watching: it goes on at StackSpot; {self.key('fetch_answer')} fetches it", "warn"
                )
            )
        self._show_outcome(turn)

    def _give_prompt_back(self) -> None:
        if self._running_prompt and not self.prompt.text:
            self.prompt.load_text(self._running_prompt)
            self.prompt.move_cursor(self.prompt.document.end)

    def _stream_into(self, seq: int) -> None:
        """An agent's answer starts: it streams into the transcript in place of the placeholder."""
        views = [view for view in self.transcript.query(MessageView) if view.seq == seq]
        prompt = next((view for view in views if view.role == "user"), None)
        for view in views:
            if view is not prompt:
                view.remove()
        self._streaming = StreamingAnswer(seq=seq)
        if prompt is not None:
            self.transcript.mount(self._streaming, after=prompt)
        else:
            self.transcript.mount(self._streaming)

    def _show_outcome(self, turn: Turn, *, live: bool = False) -> None:
        """Replace what the transcript shows under a turn's prompt (if shown) by its current state."""
        streaming = self._streaming if self._streaming is not None and self._streaming.seq == turn.seq else None
        replaced = None
        if streaming is not None and not live:
            self._streaming = None
            if turn.result is None or streaming.is_large:  # the plain view reads a huge answer better
                replaced, streaming = streaming, None
        shown = self.conversation is not None and turn.conversation == self.conversation.id
        views = [view for view in self.transcript.query(MessageView) if view.seq == turn.seq] if shown else []
        prompt = next((view for view in views if view.role == "user"), None)
        if replaced is not None:  # removed below when its prompt is shown: then no last render pass
            replaced.finish(answer_note(turn), discard=prompt is not None)
        if prompt is None:
            return
        for view in views:
            if view is not prompt and view is not streaming:
                view.remove()
        if live:
            outcome = [live_message(turn.seq, reattached=True)]
        elif streaming is not None:
            streaming.finish(answer_note(turn))  # what arrived stays as drawn: no second render
            outcome = outcome_messages(turn, self.key, with_answer=False)
        else:
            outcome = outcome_messages(turn, self.key)
        if outcome:
            self.transcript.mount_all(outcome, after=streaming or prompt)

    def _begin(self, status: str, *, elapsed: float = 0.0) -> None:
        self._busy = True
        self._stopping = False
        self.prompt.add_class("busy")
        self.run_status.start(status, hint=f"{self.key('cancel')}: stop", elapsed=elapsed)

    def _end(self) -> None:
        self._busy = False
        self._stopping = False
        self.prompt.remove_class("busy")
        self.run_status.stop()
        self.query_one(WaitStatus).stop()
        self.log_view.flush(everything=True)
        self.prompt.focus()
        if isinstance(self.app.screen, QuitScreen):
            self.app.screen.dismiss(True)  # quitting was asked for; nothing runs any more to ask about

    def _reattach_next(self) -> None:
        """Fetch, one at a time, the turns of this conversation left running (not those stopped)."""
        if self.conversation is None or self.running:
            return
        busy_elsewhere: set[tuple[str, int]] = getattr(self.app, "reattaching", set())
        for seq in self.backend.conversation(self.conversation.id).pending:
            turn = self.backend.turn(self.conversation.id, seq)
            if turn.resumes_by_itself and not turn.error and (turn.conversation, seq) not in busy_elsewhere:
                self._start_reattach(turn)  # the next is picked up when this one ends
                return

    def action_stop_watching(self) -> None:
        if self.running and self._turn_worker is not None:
            self._stopping = True
            self._turn_worker.cancel()

    # -- a focused message's actions -----------------------------------------------------------

    def _focused_turn(self) -> Turn | None:
        focused = self.focused
        if not isinstance(focused, MessageView) or self.conversation is None:
            return None
        if focused.seq is None:
            self.notify("This message is not part of a turn.", severity="warning")
            return None
        try:
            return self.backend.turn(self.conversation.id, focused.seq)
        except HistoryError:
            self.notify("This turn is no longer in the history.", severity="warning")
            return None

    def action_fetch_answer(self) -> None:
        turn = self._focused_turn()
        if turn is None:
            return
        if self.running:
            self.notify("A turn is running: one at a time.", severity="warning")
        elif turn.status == "COMPLETED":
            self.notify(f"Turn {turn.seq + 1} has its answer already.")
        elif not turn.fetchable:
            why = "it may never have reached StackSpot" if turn.maybe_sent else turn.status_words
            self.notify(f"Turn {turn.seq + 1} has no execution to fetch: {why}.", severity="warning")
        elif (turn.conversation, turn.seq) in getattr(self.app, "reattaching", set()):
            self.notify(f"Turn {turn.seq + 1} is being fetched already.")
        else:
            self._start_reattach(turn)

    def action_resend_turn(self) -> None:
        turn = self._focused_turn()
        if turn is None:
            return
        if self.running:
            self.notify("A turn is running: one at a time.", severity="warning")
        elif turn.maybe_sent:
            self._confirm_resend(turn)
        else:
            self._start_send(turn.prompt)

    def action_delete_turn(self) -> None:
        from .screens import ConfirmScreen

        turn = self._focused_turn()
        if turn is None or self.conversation is None:
            return
        if self.running:
            self.notify("A turn is running: delete turns after it ends.", severity="warning")
            return
        conv_id, seq = self.conversation.id, turn.seq

        def answered(yes: bool | None) -> None:
            if yes:
                self.backend.delete_turn(conv_id, seq)
                self.open_conversation(conv_id)
            self.prompt.focus()

        self.app.push_screen(ConfirmScreen(f"Delete turn {seq + 1} of this conversation?"), answered)

    # -- conversations and quick commands ------------------------------------------------------

    def action_new_conversation(self) -> None:
        if self.running:
            self.notify(f"A turn is running: stop watching it ({self.key('cancel')}) first.", severity="warning")
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

        self.app.push_screen(ConversationsScreen(self.backend, self._export_directory()), self._conversation_chosen)

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
        from .history import ask_and_export

        if self.conversation is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        ask_and_export(self, self.backend, self.conversation.id, fmt, self._export_directory())

    def _export_directory(self) -> Path:
        settings = getattr(self.app, "settings", None)
        return settings.export_directory if settings is not None else Path.cwd()

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
            self._copy(self.conversation.conversation_id, "the StackSpot conversation id")
        else:
            self.notify("No StackSpot conversation id yet: it comes with the first answer.", severity="warning")
