"""The conversation service: persistence order, conversation ids, failures, cancel, re-attach."""

from __future__ import annotations

import asyncio

import pytest

from stackspot_tui.api import AuthError, BadRequestError, NetworkError, ProtocolError, ServerError
from stackspot_tui.engine import ConversationService, ExecutionStarted, Progressed, Retrying, TurnFinished, TurnSaved


def creates(simulator):
    return [r for r in simulator.requests if "create-execution" in r["path"]]


async def test_two_turns_share_the_conversation_id(service, simulator, store):
    conversation = service.new_conversation("code-review")
    first = await service.send(conversation.id, "def add(a, b): return a + b")
    second = await service.send(conversation.id, "and now with type hints?")
    assert first.status == second.status == "COMPLETED"
    stored = store.get_conversation(conversation.id)
    assert stored.conversation_id and first.conversation_id == stored.conversation_id
    calls = creates(simulator)
    assert "conversation_id" not in calls[0]["query"]
    assert calls[1]["query"]["conversation_id"] == stored.conversation_id
    # the simulator remembers the first turn: its second answer quotes it
    assert "def add(a, b)" in second.result
    assert [t.status for t in store.turns(conversation.id)] == ["COMPLETED", "COMPLETED"]


async def test_events_arrive_in_order_with_steps(service):
    conversation = service.new_conversation("code-review")
    events = []
    turn = await service.send(conversation.id, "x = 1", on_event=events.append)
    kinds = [type(e) for e in events]
    assert kinds[0] is TurnSaved and kinds[1] is ExecutionStarted and kinds[-1] is TurnFinished
    progressed = [e for e in events if isinstance(e, Progressed)]
    assert progressed and progressed[-1].execution.status == "COMPLETED"
    assert sum(len(e.new_steps) for e in progressed) >= 2
    assert all(e.elapsed >= 0 for e in progressed)
    assert events[-1].turn == turn and not events[-1].interrupted
    assert turn.steps and all(s.done for s in turn.steps)


class SpyClient:
    """Checks what is on disk at the moment each request would go out."""

    def __init__(self, store, inner):
        self.store, self.inner, self.seen = store, inner, []

    async def create_execution(self, slug, input_data, conversation_id=None, **kw):
        turn = self.store.turns(self.conversation)[-1]
        self.seen.append(("create", turn.status, turn.prompt, turn.execution_id))
        return await self.inner.create_execution(slug, input_data, conversation_id, **kw)

    async def watch(self, execution_id, **kw):
        turn = self.store.turns(self.conversation)[-1]
        self.seen.append(("watch", turn.status, turn.prompt, turn.execution_id))
        async for execution in self.inner.watch(execution_id, **kw):
            yield execution


async def test_prompt_saved_before_send_and_execution_id_before_polling(service, store, fake_time):
    conversation = service.new_conversation("echo")
    spy = SpyClient(store, service.client)
    spy.conversation = conversation.id
    spied = ConversationService(spy, store, clock=fake_time.clock)
    turn = await spied.send(conversation.id, "keep me")
    assert spy.seen[0] == ("create", "PENDING", "keep me", None)
    assert spy.seen[1] == ("watch", "CREATED", "keep me", turn.execution_id)
    assert turn.result == "keep me"


async def test_failure_is_final_with_the_server_message(service, store, simulator):
    conversation = service.new_conversation("sim-failure")
    events = []
    turn = await service.send(conversation.id, "please fail", on_event=events.append)
    assert turn.status == "FAILURE" and "Simulated failure" in turn.error
    assert not turn.needs_reattach and store.pending_turns() == []
    polls = [r for r in simulator.requests if "callback" in r["path"]]
    assert len(polls) < 20  # stopped at FAILURE, no endless loop


async def test_unknown_slug_ends_the_turn_with_a_clear_error(service):
    conversation = service.new_conversation("no-such-command")
    turn = await service.send(conversation.id, "hi")
    assert turn.status == "ERROR" and turn.error_kind == "not_found"
    assert "no-such-command" in turn.error and turn.execution_id is None


async def test_dict_input_is_sent_as_object(service, simulator):
    conversation = service.new_conversation("echo")
    turn = await service.send(conversation.id, '{"a": 1}', input_data={"a": 1})
    assert turn.input_data == {"a": 1} and turn.status == "COMPLETED"


async def test_rate_limit_is_waited_and_reported(service):
    conversation = service.new_conversation("sim-rate-limit")
    events = []
    turn = await service.send(conversation.id, "hi", on_event=events.append)
    retries = [e for e in events if isinstance(e, Retrying)]
    assert turn.status == "COMPLETED"
    assert retries and retries[0].notice.reason == "rate_limited" and retries[0].notice.delay == 1.0


async def test_stopping_while_polling_keeps_the_turn_fetchable(service, store, simulator):
    conversation = service.new_conversation("sim-slow")
    started = asyncio.Event()

    def on_event(event):
        if isinstance(event, Progressed):
            started.set()

    task = asyncio.create_task(service.send(conversation.id, "long one", on_event=on_event))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    turn = store.turns(conversation.id)[-1]
    # Quit or Ctrl+C: left running, the next start or `resume` fetches it by itself.
    assert turn.status in ("CREATED", "RUNNING") and turn.execution_id and turn.resumes_by_itself
    assert [t.seq for _, t in service.fetchable_turns()] == [turn.seq]
    # Esc: the user stopped watching; fetched only when asked.
    turn = service.detach(conversation.id, turn.seq)
    assert turn.status == "DETACHED" and turn.needs_reattach and not turn.resumes_by_itself
    assert service.fetchable_turns() == []
    assert [t.seq for _, t in service.fetchable_turns(include_stopped=True)] == [turn.seq]
    done = await service.reattach_all(include_stopped=True)
    assert [t.status for t in done] == ["COMPLETED"] and done[0].result
    assert len(creates(simulator)) == 1  # fetched, never re-sent


class SlowCreate:
    """create-execution answers only when the test says so."""

    def __init__(self, inner, *, fail: Exception | None = None):
        self.inner = inner
        self.fail = fail
        self.sent = asyncio.Event()
        self.answer = asyncio.Event()

    async def create_execution(self, *args, **kw):
        self.sent.set()
        await self.answer.wait()
        if self.fail:
            raise self.fail
        return await self.inner.create_execution(*args, **kw)

    def watch(self, execution_id, **kw):
        return self.inner.watch(execution_id, **kw)


async def test_stopping_before_create_answers_is_may_have_been_sent_then_the_late_id_is_kept(
    service, store, simulator, fake_time
):
    conversation = service.new_conversation("code-review")
    slow = SlowCreate(service.client)
    stopping = ConversationService(slow, store, clock=fake_time.clock)
    events = []
    task = asyncio.create_task(stopping.send(conversation.id, "stop me", on_event=events.append))
    await slow.sent.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    turn = store.turns(conversation.id)[-1]
    assert turn.status == "MAYBE_SENT" and turn.maybe_sent and "may have been sent" in turn.error
    slow.answer.set()  # StackSpot answers after all
    for _ in range(20):
        await asyncio.sleep(0)
    turn = store.get_turn(conversation.id, turn.seq)
    assert turn.status == "DETACHED" and turn.execution_id and not turn.maybe_sent and not turn.error
    assert isinstance(events[-1], TurnFinished) and events[-1].turn.status == "DETACHED"
    done = await service.reattach(conversation.id, turn.seq)
    assert done.status == "COMPLETED" and len(creates(simulator)) == 1


@pytest.mark.parametrize(
    "error, status",
    [
        (NetworkError("StackSpot did not answer in time (https://sim.test): ReadTimeout"), "MAYBE_SENT"),
        (ServerError("StackSpot failed on quick command 'x' (HTTP 500)", status_code=500), "MAYBE_SENT"),
        (ProtocolError("create-execution did not answer JSON (got text/html)"), "MAYBE_SENT"),
        (BadRequestError("StackSpot refused the request (HTTP 422)", status_code=422), "ERROR"),
        (AuthError("StackSpot rejected the access token (HTTP 401)", status_code=401), "ERROR"),
    ],
)
async def test_a_failed_create_says_whether_it_may_have_been_sent(service, store, fake_time, error, status):
    conversation = service.new_conversation("code-review")
    slow = SlowCreate(service.client, fail=error)
    slow.answer.set()
    turn = await ConversationService(slow, store, clock=fake_time.clock).send(conversation.id, "x")
    assert turn.status == status and turn.error == str(error) and not turn.execution_id
    assert turn.maybe_sent == (status == "MAYBE_SENT")


class OddAnswer:
    """create works; the first poll answers something that is not the expected JSON."""

    def __init__(self, inner):
        self.inner = inner

    async def create_execution(self, *args, **kw):
        return await self.inner.create_execution(*args, **kw)

    async def watch(self, execution_id, **kw):
        raise ProtocolError("the execution callback did not answer JSON (got text/html)")
        yield  # pragma: no cover


async def test_an_odd_poll_answer_is_not_final(service, store, fake_time, simulator):
    conversation = service.new_conversation("code-review")
    turn = await ConversationService(OddAnswer(service.client), store, clock=fake_time.clock).send(conversation.id, "x")
    assert turn.needs_reattach and turn.resumes_by_itself and turn.error_kind == "protocol"
    assert (await service.reattach(conversation.id, turn.seq)).status == "COMPLETED"
    assert len(creates(simulator)) == 1


class FlakyWatch:
    """create works; watching fails with a network error."""

    def __init__(self, inner):
        self.inner = inner

    async def create_execution(self, *args, **kw):
        return await self.inner.create_execution(*args, **kw)

    async def watch(self, execution_id, **kw):
        raise NetworkError("cannot reach StackSpot at https://sim.test: connection refused")
        yield  # pragma: no cover


async def test_network_loss_while_watching_keeps_the_turn_and_reattach_completes_it(
    service, store, simulator, fake_time
):
    conversation = service.new_conversation("code-review")
    flaky = ConversationService(FlakyWatch(service.client), store, clock=fake_time.clock)
    turn = await flaky.send(conversation.id, "survive this")
    assert turn.needs_reattach and turn.error_kind == "network"
    assert [t.seq for _, t in store.pending_turns()] == [turn.seq]
    creates_before = len(creates(simulator))
    done = await service.reattach_all()
    assert [t.status for t in done] == ["COMPLETED"]
    assert len(creates(simulator)) == creates_before  # nothing re-sent
    assert store.pending_turns() == []
    assert store.get_turn(conversation.id, turn.seq).result


async def test_html_answers_while_polling_keep_the_turn_reattachable(service, store):
    """A gateway page with status 200 on every poll: retried, then the turn waits for `resume`."""
    conversation = service.new_conversation("sim-malformed")
    events = []
    turn = await service.send(conversation.id, "hi", on_event=events.append)
    assert turn.needs_reattach and turn.error_kind == "server" and turn.status != "ERROR"
    assert "instead of a JSON object" in turn.error
    assert [e.notice.reason for e in events if isinstance(e, Retrying)] == ["server_error"] * 3
    assert store.pending_turns()


async def test_a_long_created_is_reported_once_and_waited_out(simulator, store, fake_time):
    from conftest import make_client

    from stackspot_tui.engine import StillCreated

    client = make_client(simulator, fake_time)
    service = ConversationService(client, store, clock=fake_time.clock, created_warning=5.0)
    conversation = service.new_conversation("sim-stuck-created")  # CREATED for 9 s, then 3 s of work
    events = []
    turn = await service.send(conversation.id, "hi", on_event=events.append)
    await client.aclose()
    warnings = [e for e in events if isinstance(e, StillCreated)]
    assert len(warnings) == 1 and 5.0 <= warnings[0].waited < 7.0
    assert turn.status == "COMPLETED"


@pytest.mark.parametrize(
    "slug, error",
    [
        ("sim-failure-progress", "Simulated failure: the LLM step raised an error"),
        ("sim-failure-step", "step 3 (generate): Simulated failure: the LLM step raised an error"),
        ("sim-failure-web", "step 2 (fetch-context): HTTP 502 · Bad Gateway: the ticket service did not answer"),
        (
            "sim-failure-silent",
            "the execution failed on StackSpot without an explanation; it stopped at step 3 (generate)",
        ),
    ],
)
async def test_a_failures_explanation_becomes_the_turns_error(service, store, slug, error):
    conversation = service.new_conversation(slug)
    turn = await service.send(conversation.id, "please fail")
    assert turn.status == "FAILURE" and turn.error == error and turn.error_kind == "failure"
    assert store.get_turn(conversation.id, turn.seq).error == error


async def test_web_steps_and_sources_are_kept_for_the_transcript(service, store):
    conversation = service.new_conversation("code-review")
    turn = await service.send(conversation.id, "x = 1")
    stored = store.get_turn(conversation.id, turn.seq).steps
    assert (stored[0].name, stored[0].status_code, stored[0].preview) == (
        "fetch-guidelines",
        200,
        '{"rules": 12, "style": "pep8"}',
    )
    assert stored[1].sources[0] == "Code review guidelines (KNOWLEDGE_SOURCE, score 0.83)"
    assert [s.order for s in stored] == [0, 1, 2, 3]


@pytest.mark.parametrize("slug", ["has space", "../admin", "", "x" * 86])
async def test_a_slug_stackspot_refuses_saves_nothing(service, store, simulator, slug):
    from stackspot_tui.api import InvalidSlugError

    with pytest.raises(InvalidSlugError):
        service.new_conversation(slug)
    with pytest.raises(InvalidSlugError):
        service.latest_or_new(slug)
    conversation = service.new_conversation("echo")
    if slug:  # an empty override means "the conversation's slug"
        with pytest.raises(InvalidSlugError):
            await service.send(conversation.id, "hi", slug=slug)
    assert store.turns(conversation.id) == [] and len(store.list_conversations()) == 1
    assert creates(simulator) == []


class HangingCreate:
    """create-execution that never answers until cancelled."""

    def __init__(self) -> None:
        self.sent = asyncio.Event()

    async def create_execution(self, *args, **kw):
        self.sent.set()
        await asyncio.Event().wait()


async def test_cancel_while_create_is_unanswered_ends_the_turn_may_have_been_sent(store, fake_time):
    client = HangingCreate()
    service = ConversationService(client, store, clock=fake_time.clock)
    conversation = service.new_conversation("echo")
    events = []
    task = asyncio.create_task(service.send(conversation.id, "never answered", on_event=events.append))
    await client.sent.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    turn = store.turns(conversation.id)[-1]
    assert turn.status == "MAYBE_SENT" and turn.prompt == "never answered" and turn.maybe_sent
    assert "may have been sent" in turn.error and turn.execution_id is None
    assert not turn.needs_reattach and store.pending_turns() == []  # no id: nothing to resume
    assert not any(isinstance(event, TurnFinished) for event in events)  # the stopper says what it left


async def test_a_watch_that_hits_404_ends_the_turn_and_leaves_nothing_to_resume(service, store, simulator):
    """StackSpot forgot the execution (expired, or never kept): its callback answers 404."""
    conversation = service.new_conversation("sim-slow")

    def forget(event):
        if isinstance(event, ExecutionStarted):
            simulator.quick._executions.pop(event.execution_id)

    turn = await service.send(conversation.id, "gone", on_event=forget)
    assert turn.status == "ERROR" and turn.error_kind == "not_found" and "not found" in turn.error
    assert turn.execution_id and not turn.needs_reattach and turn.finished_at
    assert store.pending_turns() == []


async def test_the_answer_is_shown_before_its_final_write_and_stays_fetchable(service, store):
    """The last step lines, then the answer, then the write: a crash before it leaves the turn re-attachable."""
    from stackspot_tui.engine import AnswerDelta

    conversation = service.new_conversation("echo")
    seen = []

    def on_event(event):
        if isinstance(event, AnswerDelta):
            stored = store.turns(conversation.id)[-1]
            seen.append(("answer", stored.needs_reattach, stored.result))
        elif isinstance(event, Progressed) and event.execution.is_final:
            seen.append(("final progress", None, None))
        elif isinstance(event, TurnFinished):
            seen.append(("finished", event.turn.needs_reattach, event.turn.result))

    turn = await service.send(conversation.id, "hi", on_event=on_event)
    assert seen == [("final progress", None, None), ("answer", True, None), ("finished", False, "hi")]
    assert store.get_turn(conversation.id, turn.seq).result == "hi"


async def test_reattaching_a_turn_another_process_finished_still_ends_it(service, store):
    """The app re-attaches a turn left running; if another process (a `run` watching it) has
    finished it meanwhile, nothing is fetched, but the turn ends as every turn does: the app
    waits for that TurnFinished, and without it stayed "running" for good."""
    conversation = service.new_conversation("code-review")
    turn = await service.send(conversation.id, "hello")
    assert turn.status == "COMPLETED" and not turn.fetchable
    events = []
    again = await service.reattach(conversation.id, turn.seq, on_event=events.append)
    assert again.status == "COMPLETED"
    assert [type(e) for e in events] == [TurnFinished] and events[0].turn.seq == turn.seq
