"""Engine events as short plain-text lines, for the CLI's stderr and the TUI's progress log."""

from __future__ import annotations

from dataclasses import dataclass

from .engine import Event, ExecutionStarted, Progressed, Retrying, TurnFinished, TurnSaved
from .textsafe import one_line


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


def step_line(order: int | None, name: str, kind: str | None) -> ProgressLine:
    """A step as it appears: order, name, type."""
    return ProgressLine(
        f"  step {order if order is not None else '-'} · {one_line(name, 60)}{f' ({kind})' if kind else ''}", "step"
    )


def progress_lines(event: Event) -> list[ProgressLine]:
    if isinstance(event, TurnSaved):
        return [ProgressLine(f"turn {event.turn.seq + 1} · {event.conversation.slug}", "heading")]
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
        lines += [step_line(step.order, step.name, step.type) for step in event.new_steps]
        for step, took in event.finished_steps:
            sources = f" · {len(step.sources)} source(s)" if step.sources else ""
            took_text = f" in {seconds(took)}" if took is not None else ""
            lines.append(ProgressLine(f"  step {one_line(step.name, 60)} done{took_text}{sources}", "step"))
        return lines
    if isinstance(event, Retrying):
        notice = event.notice
        what = {"rate_limited": "rate limited", "server_error": "server error", "network": "network error"}[
            notice.reason
        ]
        return [
            ProgressLine(
                f"{what}: {one_line(notice.detail, 120)} · waiting {seconds(notice.delay)} "
                f"(retry {notice.attempt}/{notice.max_attempts})",
                "warn",
            )
        ]
    if isinstance(event, TurnFinished):
        turn = event.turn
        took_text = seconds(event.elapsed)
        if turn.status == "COMPLETED":
            return [ProgressLine(f"COMPLETED in {took_text}", "ok")]
        if event.interrupted:
            return [
                ProgressLine(f"stopped watching after {took_text}: {turn.error}", "error"),
                ProgressLine("the execution may still run on StackSpot: `stackspot-tui resume` picks it up", "warn"),
            ]
        return [ProgressLine(f"{turn.status} after {took_text}: {turn.error or 'no message'}", "error")]
    return []
