"""Engine events as short plain-text lines, for the CLI's stderr and the TUI's progress log."""

from __future__ import annotations

from dataclasses import dataclass

from .engine import (
    AnswerStopped,
    Event,
    ExecutionStarted,
    FirstToken,
    Progressed,
    RequestSent,
    Retrying,
    StillCreated,
    TurnFinished,
    TurnSaved,
    summarize_step,
)
from .export import token_counts
from .store.models import StepSummary, Turn
from .textsafe import one_line
from .wording import counted


@dataclass(frozen=True)
class ProgressLine:
    text: str
    level: str = "info"  # info | heading | step | warn | error | ok


def seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def percent(value: float | None) -> str:
    return "" if value is None else f" {value * 100:.0f}%"


SOURCES_SHOWN = 5  # per step; the rest are counted


def step_line(position: int, name: str, kind: str | None) -> ProgressLine:
    """A step as it appears: its place (from 1), name, type."""
    return ProgressLine(f"  step {position} · {one_line(name, 60)}{f' ({one_line(kind, 30)})' if kind else ''}", "step")


def step_result_lines(position: int, step: StepSummary, took: float | None = None) -> list[ProgressLine]:
    """A finished step: how long it ran, a web request's status and data, what went wrong, its sources."""
    facts = [f"in {seconds(took)}"] if took is not None else []
    if step.status_code is not None or step.preview:
        status = f"HTTP {step.status_code}" if step.status_code is not None else "no HTTP status"
        facts.append(f"{status} · {one_line(step.preview, 80)}" if step.preview else status)
    head = f"  step {position} · {one_line(step.name, 60)} {'failed' if step.error else 'done'}"
    lines = [ProgressLine(" · ".join([head, *facts]) if facts else head, "warn" if step.error else "step")]
    if step.error and not step.error.startswith(f"HTTP {step.status_code}"):  # a failed request is shown above
        lines.append(ProgressLine(f"    error: {one_line(step.error, 160)}", "warn"))
    lines += [ProgressLine(f"    source: {one_line(source, 120)}", "step") for source in step.sources[:SOURCES_SHOWN]]
    if len(step.sources) > SOURCES_SHOWN:
        lines.append(ProgressLine(f"    … and {counted(len(step.sources) - SOURCES_SHOWN, 'more source')}", "step"))
    return lines


def stored_step_lines(steps: list[StepSummary]) -> list[ProgressLine]:
    """The steps of a stored turn, as the progress log showed them."""
    lines = []
    for position, step in enumerate(steps, 1):
        lines.append(step_line(position, step.name, step.type))
        if step.done:
            lines += step_result_lines(position, step)
    return lines


def progress_lines(event: Event) -> list[ProgressLine]:
    if isinstance(event, TurnSaved):
        return [ProgressLine(f"turn {event.turn.seq + 1} · {one_line(event.conversation.target, 80)}", "heading")]
    if isinstance(event, RequestSent):
        return [ProgressLine(f"request sent to agent {one_line(event.agent_id, 60)}")]
    if isinstance(event, FirstToken):
        return [ProgressLine(f"first token after {seconds(event.after)}")]
    if isinstance(event, AnswerStopped):
        return _stopped_lines(event)
    if isinstance(event, ExecutionStarted):
        verb = "re-attached to" if event.reattached else "started"
        return [ProgressLine(f"{verb} execution {event.execution_id}")]
    if isinstance(event, Progressed):
        execution = event.execution
        lines = []
        if not execution.is_final:  # the final status is TurnFinished's line
            lines.append(
                ProgressLine(f"{execution.status}{percent(execution.progress.percentage)} · {seconds(event.elapsed)}")
            )
        # In the order things happened: steps run one after another, so by position, a step's
        # start before its end ("step 1 done" before "step 2" when one poll saw both).
        started = {step.position: [step_line(step.position, step.name, step.type)] for step in event.new_steps}
        ended = {
            step.position: step_result_lines(step.position, summarize_step(step), took)
            for step, took in event.finished_steps
        }
        for position in sorted(started.keys() | ended.keys()):
            lines += started.get(position, []) + ended.get(position, [])
        return lines
    if isinstance(event, StillCreated):
        return [
            ProgressLine(
                f"still CREATED after {seconds(event.waited)}: StackSpot has not started the execution yet "
                "(it may be overloaded); still waiting",
                "warn",
            )
        ]
    if isinstance(event, Retrying):
        notice = event.notice
        what = {"rate_limited": "rate limited", "server_error": "server error", "network": "network error"}[
            notice.reason
        ]
        return [
            ProgressLine(
                f"{what}: {one_line(notice.detail, 240)} · waiting {seconds(notice.delay)} "
                f"(retry {notice.attempt}/{notice.max_attempts})",
                "warn",
            )
        ]
    if isinstance(event, TurnFinished):
        turn = event.turn
        took_text = seconds(event.elapsed)
        if turn.status == "COMPLETED":
            return [ProgressLine(f"COMPLETED in {took_text}", "ok")]
        if turn.is_agent and turn.status != "ERROR":
            kept = " · the answer so far is kept" if turn.result else ""
            return [ProgressLine(f"{turn.status} after {took_text}: {turn.error or 'no message'}{kept}", "error")]
        if turn.status == "DETACHED":  # create-execution answered after the user stopped watching
            return [
                ProgressLine(f"StackSpot confirmed execution {turn.execution_id}: its answer can be fetched", "warn")
            ]
        if event.interrupted:
            return [
                ProgressLine(f"stopped watching after {took_text}: {turn.error}", "error"),
                ProgressLine("the execution may still run on StackSpot: `stackspot-tui resume` picks it up", "warn"),
            ]
        if turn.maybe_sent:
            return [
                ProgressLine(f"not confirmed after {took_text}: {turn.error or 'no answer'}", "error"),
                ProgressLine("it may have been sent: sending it again may run it twice", "warn"),
            ]
        return [ProgressLine(f"{turn.status} after {took_text}: {turn.error or 'no message'}", "error")]
    return []


def _stopped_lines(event: AnswerStopped) -> list[ProgressLine]:
    reply = event.reply
    facts = [f"stop reason {one_line(reply.stop_reason, 40)}" if reply.stop_reason else "no stop reason"]
    counts = token_counts(reply.tokens.to_dict())
    if counts:
        facts.append(f"tokens {counts}")
    rate = event.tokens_per_second
    if rate is not None:
        unit = "tokens/s" if reply.tokens.output is not None else "pieces/s"
        facts.append(f"{rate:.0f} {unit}")
    lines = [ProgressLine(" · ".join(facts), "info" if reply.ended else "warn")]
    if reply.sources:
        names = ", ".join(one_line(source.label(), 60) for source in reply.sources[:5])
        more = f" (+{len(reply.sources) - 5})" if len(reply.sources) > 5 else ""
        lines.append(ProgressLine(f"  sources: {names}{more}", "step"))
    return lines


def stored_agent_lines(turn: Turn) -> list[ProgressLine]:
    """What the log said about an agent turn, rebuilt from its record when a conversation opens."""
    if not turn.is_agent:
        return []
    facts = [f"stop reason {one_line(turn.stop_reason, 40)}" if turn.stop_reason else "no stop reason"]
    counts = token_counts(turn.tokens)
    if counts:
        facts.append(f"tokens {counts}")
    lines = [ProgressLine(" · ".join(facts), "warn" if turn.incomplete else "info")]
    if turn.sources:
        lines.append(ProgressLine("  sources: " + ", ".join(one_line(s, 60) for s in turn.sources[:5]), "step"))
    return lines
