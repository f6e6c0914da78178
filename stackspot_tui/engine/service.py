"""Conversation service: the one path from a prompt to a persisted answer.

Used by the TUI and the headless CLI alike. Two kinds of turn share it: a quick-command turn
(create an execution, poll it) and an agent turn (one streamed request). Both save the prompt
before sending, emit the same events (the answer's text as ``AnswerDelta``), and end with
``TurnFinished``. Quick commands: the execution id is saved as soon as known, the conversation
id from the first callback, the result when it arrives. Agents: the conversation id before
sending, the partial answer while it streams (marked incomplete), the whole one at the end.

StackSpot has no cancel for a quick command: stopping only stops watching. Cancelling
`send`/`reattach` leaves the turn as it was (re-attachable: the next start or `resume` fetches
it); `detach` records that the user chose to stop (then it is fetched only on demand). Stopped
before create-execution answered, the turn "may have been sent" (MAYBE_SENT), and if the answer
still comes in, its execution id is kept and the turn becomes DETACHED.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..api import (
    AgentClient,
    AgentReply,
    Execution,
    NotFoundError,
    RetryNotice,
    StackSpotClient,
    StackSpotError,
    Step,
    StreamCut,
    TextDelta,
    check_slug,
)
from ..ids import ulid
from ..store import HistoryError, HistoryStore
from ..store.models import (
    CANCELLED,
    DETACHED,
    INCOMPLETE,
    LOCAL_ERROR,
    MAYBE_SENT,
    STREAMING,
    Conversation,
    StepSummary,
    Turn,
    now_iso,
)
from .partial import PartialSaver

T = TypeVar("T")

RESUME_HINT = "the execution may still run on StackSpot: `stackspot-tui resume` picks it up"

# Only StackSpot's own FAILURE or a 404 for the execution ends a watched turn for good.
# Other errors (network, 5xx, odd answers, rate limit, auth, timeout) leave it re-attachable.
_FATAL_WATCH_ERRORS = (NotFoundError,)

# A create-execution that failed this way was refused before it ran: the turn was not sent.
# Any other failure (network, 5xx, an unreadable answer) may have reached StackSpot.
_NOT_SENT_KINDS = frozenset(
    {"auth", "forbidden", "not_found", "bad_request", "prompt_too_long", "rate_limited", "quota"}
)


@dataclass(frozen=True)
class TurnSaved:
    """The prompt is on disk; nothing has been sent yet."""

    conversation: Conversation
    turn: Turn


@dataclass(frozen=True)
class ExecutionStarted:
    turn: Turn
    execution_id: str
    reattached: bool = False


@dataclass(frozen=True)
class Progressed:
    """A callback snapshot that differs from the previous one."""

    turn: Turn
    execution: Execution
    new_steps: tuple[Step, ...]
    finished_steps: tuple[tuple[Step, float | None], ...]  # step, seconds we saw it run
    elapsed: float


@dataclass(frozen=True)
class StillCreated:
    """The execution has sat in CREATED for ``waited`` seconds (StackSpot overloaded?); still waiting."""

    turn: Turn
    waited: float


@dataclass(frozen=True)
class Retrying:
    turn: Turn
    notice: RetryNotice
    elapsed: float


@dataclass(frozen=True)
class TurnFinished:
    """The turn ended: COMPLETED, FAILURE, ERROR, MAYBE_SENT, an agent's CANCELLED or INCOMPLETE,
    or interrupted (re-attachable); or a stopped turn got its late execution id (DETACHED)."""

    conversation: Conversation
    turn: Turn
    elapsed: float

    @property
    def interrupted(self) -> bool:
        return self.turn.needs_reattach


@dataclass(frozen=True)
class RequestSent:
    """An agent's chat request is on its way; the answer will stream."""

    turn: Turn
    agent_id: str
    conversation_id: str | None


@dataclass(frozen=True)
class FirstToken:
    """The first piece of an agent's answer arrived, ``after`` seconds after the request was sent."""

    turn: Turn
    after: float


@dataclass(frozen=True)
class AnswerDelta:
    """More of the answer's text: an agent's next piece, or a quick command's whole result."""

    turn: Turn
    text: str


@dataclass(frozen=True)
class AnswerStopped:
    """An agent's stream is over (``reply.ended`` False: without its final event, or cut)."""

    turn: Turn
    reply: AgentReply
    pieces: int  # text events received
    streamed: float  # seconds from the first token to the end

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens (or, without a count, text events) per second of streaming."""
        count = self.reply.tokens.output if self.reply.tokens.output is not None else self.pieces
        return count / self.streamed if self.streamed > 0 and count else None


Event = (
    TurnSaved
    | ExecutionStarted
    | Progressed
    | StillCreated
    | Retrying
    | RequestSent
    | FirstToken
    | AnswerDelta
    | AnswerStopped
    | TurnFinished
)
EventCallback = Callable[[Event], None]


@dataclass
class _StepClock:
    """When each step was first seen and seen done, to report how long it ran."""

    started: dict[tuple[int, str], float] = field(default_factory=dict)
    done: set[tuple[int, str]] = field(default_factory=set)

    def diff(
        self, steps: tuple[Step, ...], now: float
    ) -> tuple[tuple[Step, ...], tuple[tuple[Step, float | None], ...]]:
        new, finished = [], []
        for index, step in enumerate(steps):
            key = (index, step.name)
            if key not in self.started:
                self.started[key] = now
                new.append(step)
                first_seen_done = True
            else:
                first_seen_done = False
            if step.done and key not in self.done:
                self.done.add(key)
                finished.append((step, None if first_seen_done else now - self.started[key]))
        return tuple(new), tuple(finished)


def summarize_step(step: Step) -> StepSummary:
    """What the history keeps of a step: enough for the transcript and exports to show it."""
    return StepSummary(
        name=step.name,
        order=step.order,
        type=step.type,
        done=step.done,
        sources=[source.detail() for source in step.sources],
        status_code=step.web.status_code if step.web else None,
        preview=step.web.preview() if step.web else None,
        error=step.error,
    )


def _step_summaries(steps: tuple[Step, ...]) -> list[StepSummary]:
    return [summarize_step(step) for step in steps]


def fetchable_turns(
    store: HistoryStore, *, conversation_id: str | None = None, include_stopped: bool = False
) -> list[tuple[Conversation, Turn]]:
    """Turns whose answer can still be fetched, oldest first: those left running, and with
    ``include_stopped`` also those the user stopped watching."""
    return [
        (conversation, turn)
        for conversation, turn in store.pending_turns()
        if (conversation_id is None or conversation.id == conversation_id)
        and (include_stopped or turn.resumes_by_itself)
    ]


class ConversationService:
    def __init__(
        self,
        client: StackSpotClient,
        store: HistoryStore,
        *,
        agents: AgentClient | None = None,
        clock: Callable[[], float] | None = None,
        save_interval: float = 0.25,
        created_warning: float = 60.0,
    ):
        """``created_warning``: seconds in CREATED after which the progress says so (once).

        ``clock`` defaults to the client's: a turn's start is handed to the client's overall
        timeout, so both must read one clock."""
        self.client = client
        self.agents = agents or AgentClient(client)
        self.store = store
        self._clock = clock or client.clock
        self._save_interval = save_interval  # partial answers reach the disk at least this often
        self.created_warning = created_warning

    # -- conversations --------------------------------------------------------------------

    def new_conversation(self, slug: str = "", title: str = "", *, agent_id: str | None = None) -> Conversation:
        """A conversation with a quick command (``slug``) or with an agent (``agent_id``).

        Raises InvalidSlugError, saving nothing, for a slug StackSpot would refuse."""
        if not agent_id:
            check_slug(slug)
        return self.store.create_conversation("" if agent_id else slug, title, agent_id=agent_id)

    def latest_or_new(self, slug: str = "", *, agent_id: str | None = None) -> Conversation:
        if agent_id:
            latest = self.store.latest_conversation(agent_id=agent_id)
        else:
            latest = self.store.latest_conversation(check_slug(slug))
        return latest or self.new_conversation(slug, agent_id=agent_id)

    # -- turns ----------------------------------------------------------------------------

    async def send(
        self,
        conversation_id: str,
        prompt: str,
        *,
        input_data: str | dict[str, Any] | None = None,
        slug: str | None = None,
        on_event: EventCallback | None = None,
    ) -> Turn:
        """Run one turn to its end and return it as stored.

        Never raises StackSpot errors: they end the turn (``turn.error``), except
        InvalidSlugError for a slug StackSpot would refuse, raised before anything is saved.
        Cancelling the task stops watching a quick command (see the module docstring) and stops
        an agent's stream (CANCELLED, with what arrived); either way CancelledError is re-raised.
        """
        emit = on_event or (lambda event: None)
        store = self.store
        conversation = await self._io(store.get_conversation, conversation_id)
        if not conversation.agent_id:
            check_slug(slug or conversation.slug)
        payload = prompt if input_data is None else input_data
        turn = await self._io(store.add_turn, conversation.id, prompt, payload, slug=slug or conversation.slug)
        conversation = await self._io(store.get_conversation, conversation.id)
        emit(TurnSaved(conversation, turn))
        if conversation.agent_id:
            return await self._agent_turn(conversation, turn, emit)
        return await self._quick_command_turn(conversation, turn, payload, slug, emit)

    async def _quick_command_turn(
        self, conversation: Conversation, turn: Turn, payload: Any, slug: str | None, emit: EventCallback
    ) -> Turn:
        """Create an execution, then poll it to its end (``_follow``)."""
        started = self._clock()
        create = asyncio.ensure_future(
            self.client.create_execution(
                slug or conversation.slug,
                payload,
                conversation.conversation_id,
                on_retry=self._retry_reporter(lambda: turn, started, emit),
            )
        )
        try:
            # Shielded: stopping while StackSpot answers must not lose the execution id.
            execution_id = await asyncio.shield(create)
        except StackSpotError as exc:
            status = LOCAL_ERROR if exc.kind in _NOT_SENT_KINDS else MAYBE_SENT
            turn = await self._end(turn, status=status, error=str(exc), error_kind=exc.kind)
            return await self._finish(turn, started, emit)
        except asyncio.CancelledError:
            turn = await self._end(
                turn, status=MAYBE_SENT, error="stopped before StackSpot confirmed it: it may have been sent"
            )
            create.add_done_callback(lambda task: self._late_execution_id(turn, conversation, task, started, emit))
            raise
        created_at = self._clock()  # the poll grid's anchor: before the disk write below
        try:
            turn = await self._io(
                self.store.update_turn,
                turn.conversation,
                turn.seq,
                execution_id=execution_id,
                status="CREATED",
                sent_at=now_iso(),
                conversation_id=conversation.conversation_id,
            )
        except HistoryError as exc:
            # Without its id on disk the execution cannot be resumed: say so, with the id.
            turn = replace(
                turn,
                status=LOCAL_ERROR,
                execution_id=execution_id,
                error=f"execution {execution_id} started on StackSpot, but its id could not be saved: {exc}",
                error_kind="history",
            )
            emit(TurnFinished(conversation, turn, self._clock() - started))
            return turn
        emit(ExecutionStarted(turn, execution_id))
        return await self._follow(turn, started, emit, created_at=created_at)

    async def reattach(self, conversation_id: str, seq: int, *, on_event: EventCallback | None = None) -> Turn:
        """Poll a turn that was created but never seen finished (or stopped). Nothing is re-sent."""
        emit = on_event or (lambda event: None)
        turn = await self._io(self.store.get_turn, conversation_id, seq)
        if not turn.fetchable or turn.execution_id is None:
            # Nothing to fetch (another process watched it to its end meanwhile): it still ends as
            # every turn does, or a caller waiting for TurnFinished waits forever.
            emit(TurnFinished(await self._io(self.store.get_conversation, conversation_id), turn, 0.0))
            return turn
        emit(ExecutionStarted(turn, turn.execution_id, reattached=True))
        return await self._follow(turn, self._clock(), emit)

    def fetchable_turns(
        self, *, conversation_id: str | None = None, include_stopped: bool = False
    ) -> list[tuple[Conversation, Turn]]:
        return fetchable_turns(self.store, conversation_id=conversation_id, include_stopped=include_stopped)

    async def reattach_all(self, *, include_stopped: bool = False, on_event: EventCallback | None = None) -> list[Turn]:
        turns = []
        for conversation, turn in await self._io(self.fetchable_turns, include_stopped=include_stopped):
            turns.append(await self.reattach(conversation.id, turn.seq, on_event=on_event))
        return turns

    def detach(self, conversation_id: str, seq: int) -> Turn:
        """The user stopped watching: keep the execution id, fetch it only when asked."""
        turn = self.store.get_turn(conversation_id, seq)
        if not turn.needs_reattach:
            return turn
        return self.store.update_turn(conversation_id, seq, status=DETACHED)

    # -- internals ------------------------------------------------------------------------

    async def _follow(
        self, turn: Turn, started: float, emit: EventCallback, *, created_at: float | None = None
    ) -> Turn:
        """Watch to the end. ``created_at``: when StackSpot answered the create (None on re-attach)."""
        assert turn.execution_id is not None, "only a created execution can be followed"
        steps = _StepClock()
        last: Execution | None = None
        warned_created = False
        try:
            async for execution in self.client.watch(
                turn.execution_id,
                on_retry=self._retry_reporter(lambda: turn, started, emit),  # noqa: B023 - the latest turn, on purpose
                started_at=started,
                created_at=created_at,
            ):
                waited = self._clock() - started
                if execution.status == "CREATED" and waited >= self.created_warning and not warned_created:
                    warned_created = True
                    emit(StillCreated(turn, waited))
                if last is not None and not execution.differs_from(last):
                    continue
                last = execution
                new, finished = steps.diff(execution.steps, self._clock())
                if execution.is_final:
                    # Shown first, then written (the final progress and the result, in one write):
                    # until that write the turn stays re-attachable, so a crash loses nothing.
                    emit(Progressed(turn, execution, new, finished, self._clock() - started))
                    if execution.succeeded and execution.result is not None:
                        emit(AnswerDelta(turn, execution.result_text()))
                    turn = await self._io(self._record_progress, turn, execution, final=True)
                else:
                    turn = await self._io(self._record_progress, turn, execution)
                    emit(Progressed(turn, execution, new, finished, self._clock() - started))
        except _FATAL_WATCH_ERRORS as exc:
            turn = await self._end(turn, status=LOCAL_ERROR, error=str(exc), error_kind=exc.kind)
            return await self._finish(turn, started, emit)
        except StackSpotError as exc:
            # Still running on StackSpot as far as we know: keep it re-attachable.
            turn = await self._io(
                self.store.update_turn, turn.conversation, turn.seq, error=str(exc), error_kind=exc.kind
            )
            return await self._finish(turn, started, emit)
        except HistoryError as exc:
            # The history cannot be written (a full disk...). The execution id is on disk, so the
            # turn stays re-attachable there: stop watching and say how to pick it up.
            turn = replace(turn, error=f"{exc}; {RESUME_HINT} once the history can be written", error_kind="history")
            emit(TurnFinished(await self._conversation_of(turn), turn, self._clock() - started))
            return turn
        # asyncio.CancelledError: stopped watching; the turn stays as it is, re-attachable.
        assert last is not None and last.is_final
        return await self._finish(turn, started, emit)

    async def _agent_turn(self, conversation: Conversation, turn: Turn, emit: EventCallback) -> Turn:
        """One streamed chat request; what arrives is saved as it comes, and kept whatever happens."""
        assert conversation.agent_id is not None
        agent_id = conversation.agent_id
        # A new conversation gets a client-made ULID, saved before sending, so a second turn
        # continues it even if this one is cut before the server names its own.
        conv_sid = conversation.conversation_id or ulid()
        if conversation.conversation_id != conv_sid:
            await self._io(self.store.update_conversation, conversation.id, conversation_id=conv_sid)
        turn = await self._io(
            self.store.update_turn,
            turn.conversation,
            turn.seq,
            status=STREAMING,
            sent_at=now_iso(),
            conversation_id=conv_sid,
        )
        started = self._clock()
        emit(RequestSent(turn, agent_id, conv_sid))
        parts: list[str] = []
        saver = PartialSaver(self.store, turn, lambda: "".join(parts), interval=self._save_interval)
        first_at: float | None = None
        reply = AgentReply()
        error: StackSpotError | None = None
        try:
            async with contextlib.aclosing(
                self.agents.chat(
                    agent_id,
                    turn.prompt,
                    conversation_id=conv_sid,
                    on_retry=self._retry_reporter(lambda: turn, started, emit),
                )
            ) as stream:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        if first_at is None:
                            first_at = self._clock()
                            emit(FirstToken(turn, first_at - started))
                        parts.append(event.text)
                        saver.changed()
                        emit(AnswerDelta(turn, event.text))
                    else:
                        reply = event.reply
        except StreamCut as exc:
            reply, error = exc.reply or reply, exc
        except StackSpotError as exc:
            error = exc
        except asyncio.CancelledError:
            await saver.close()
            text = "".join(parts)
            turn = await self._end(
                turn,
                status=CANCELLED,
                result=text or None,
                incomplete=bool(text),
                error="stopped by the user" if text else "stopped before the answer began",
            )
            await self._finish(turn, started, emit)
            raise
        await saver.close()
        try:
            return await self._agent_end(turn, parts, reply, error, started, first_at, emit)
        except HistoryError as exc:
            text = "".join(parts)
            turn = replace(
                turn,
                status=LOCAL_ERROR,
                result=text or None,
                incomplete=True,
                error=f"the answer could not be saved: {exc}",
                error_kind="history",
            )
            emit(TurnFinished(await self._conversation_of(turn), turn, self._clock() - started))
            return turn

    async def _agent_end(
        self,
        turn: Turn,
        parts: list[str],
        reply: AgentReply,
        error: StackSpotError | None,
        started: float,
        first_at: float | None,
        emit: EventCallback,
    ) -> Turn:
        text = "".join(parts)
        if reply.conversation_id and reply.conversation_id != turn.conversation_id:
            # The server named the conversation itself: follow it from now on.
            await self._io(self.store.update_conversation, turn.conversation, conversation_id=reply.conversation_id)
        fields: dict[str, Any] = {
            "result": text if text or error is None else None,
            "stop_reason": reply.stop_reason,
            "message_id": reply.message_id,
            "tokens": reply.tokens.to_dict() or None,
            "sources": [source.label() for source in reply.sources],
            "conversation_id": reply.conversation_id or turn.conversation_id,
            "duration": round(self._clock() - started, 3),
        }
        if error is not None and not text and not isinstance(error, StreamCut):
            turn = await self._end(turn, status=LOCAL_ERROR, error=str(error), error_kind=error.kind, **fields)
            return await self._finish(turn, started, emit)
        if error is not None:
            status, message, kind = INCOMPLETE, str(error), error.kind
        elif not reply.ended:
            status, message, kind = INCOMPLETE, "the answer stream ended without its final event", "stream_cut"
        else:
            status, message, kind = "COMPLETED", None, None
        turn = await self._end(
            turn, status=status, error=message, error_kind=kind, incomplete=status != "COMPLETED", **fields
        )
        streamed = self._clock() - first_at if first_at is not None else 0.0
        emit(AnswerStopped(turn, reply, len(parts), streamed))
        return await self._finish(turn, started, emit)

    def _record_progress(self, turn: Turn, execution: Execution, *, final: bool = False) -> Turn:
        """Save a snapshot; with ``final``, also how the turn ended (its result, or why it failed)."""
        conversation = self.store.get_conversation(turn.conversation)
        if execution.conversation_id and conversation.conversation_id != execution.conversation_id:
            # The first callback of a new conversation tells us its id: keep it for follow-ups.
            self.store.update_conversation(conversation.id, conversation_id=execution.conversation_id)
        fields: dict[str, Any] = {
            "percentage": execution.progress.percentage,
            "steps": _step_summaries(execution.steps),
            "error": None,
            "error_kind": None,
        }
        if not execution.is_final:
            fields["status"] = execution.status
        if execution.conversation_id and turn.conversation_id != execution.conversation_id:
            fields["conversation_id"] = execution.conversation_id
        if final:
            fields.update(
                status=execution.status,
                result=execution.result,
                duration=execution.progress.duration,
                finished_at=now_iso(),
            )
            if execution.succeeded:
                fields["percentage"] = 1.0
            else:
                fields.update(error=execution.failure_reason(), error_kind="failure")
        return self.store.update_turn(turn.conversation, turn.seq, **fields)

    def _late_execution_id(
        self, turn: Turn, conversation: Conversation, create: asyncio.Future[str], started: float, emit: EventCallback
    ) -> None:
        """create-execution answered after the turn was stopped: keep the id, the turn is fetchable.

        A done callback, so the two writes are made here, on the loop: a rare path."""
        if create.cancelled() or create.exception() is not None:
            return  # still "may have been sent"
        try:
            turn = self.store.update_turn(
                turn.conversation,
                turn.seq,
                execution_id=create.result(),
                status=DETACHED,
                error=None,
                error_kind=None,
                sent_at=now_iso(),
                finished_at=None,
                conversation_id=conversation.conversation_id,
            )
            emit(TurnFinished(self.store.get_conversation(turn.conversation), turn, self._clock() - started))
        except HistoryError:
            return  # deleted meanwhile, or the history cannot be written: still "may have been sent"

    async def _end(self, turn: Turn, **fields: Any) -> Turn:
        return await self._io(self.store.update_turn, turn.conversation, turn.seq, finished_at=now_iso(), **fields)

    async def _finish(self, turn: Turn, started: float, emit: EventCallback) -> Turn:
        conversation = await self._io(self.store.get_conversation, turn.conversation)
        emit(TurnFinished(conversation, turn, self._clock() - started))
        return turn

    async def _conversation_of(self, turn: Turn) -> Conversation:
        try:
            return await self._io(self.store.get_conversation, turn.conversation)
        except HistoryError:
            return Conversation(id=turn.conversation, slug=turn.slug or "", agent_id=turn.agent_id)

    async def _io(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """A store call in a worker thread: page rewrites (two fsyncs) and lock waits never stall
        the event loop. A cancelled caller still lets the call finish before the cancellation
        goes on, so store writes keep their order (a late progress write never lands after the
        CANCELLED one)."""
        future = asyncio.ensure_future(asyncio.to_thread(call, *args, **kwargs))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    def _retry_reporter(
        self, current_turn: Callable[[], Turn], started: float, emit: EventCallback
    ) -> Callable[[RetryNotice], None]:
        def report(notice: RetryNotice) -> None:
            emit(Retrying(current_turn(), notice, self._clock() - started))

        return report
