"""What the history holds: conversations and their turns (plain data, no I/O)."""

from __future__ import annotations

import copy
from dataclasses import MISSING, asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

# Local turn statuses, on top of the server's CREATED/RUNNING/COMPLETED/FAILURE/ERROR.
PENDING = "PENDING"  # saved, create-execution not answered yet (after a crash: may have been sent)
DETACHED = "DETACHED"  # the user stopped watching; it runs on at StackSpot and stays fetchable
MAYBE_SENT = "MAYBE_SENT"  # create-execution went out but was never confirmed: it may run on StackSpot
CANCELLED = "CANCELLED"  # stopped: an agent's stream, or (older histories) a quick command left unwatched
LOCAL_ERROR = "ERROR"  # could not create or watch (network, auth, 4xx...), see ``error``
# Agent turns: the answer streams in one request, so there is nothing to re-attach to.
STREAMING = "STREAMING"  # the answer is arriving; ``result`` holds what arrived so far
INCOMPLETE = "INCOMPLETE"  # the stream stopped before its end: cut, or no final event

FINAL_TURN_STATUSES = frozenset({"COMPLETED", "FAILURE", "ERROR", CANCELLED, INCOMPLETE, MAYBE_SENT})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class StepSummary:
    name: str
    order: int | None = None
    type: str | None = None
    done: bool = False
    sources: list[str] = field(default_factory=list)  # "name (type, score 0.83)"
    status_code: int | None = None  # a web-request step's HTTP status
    preview: str | None = None  # the start of a web-request step's data, one line
    error: str | None = None  # what the step's result says went wrong


@dataclass
class Turn:
    conversation: str  # local conversation id
    seq: int  # 0-based position in the conversation, never reused
    prompt: str
    input_data: Any  # what was sent: the prompt text, or a JSON object
    slug: str | None = None  # quick command the turn ran (lets `repair` rebuild a lost index record)
    status: str = PENDING
    execution_id: str | None = None
    conversation_id: str | None = None  # StackSpot conversation id the turn ran in
    percentage: float | None = None
    steps: list[StepSummary] = field(default_factory=list)
    result: Any = None  # raw server result (Markdown string, or JSON value)
    error: str | None = None
    error_kind: str | None = None
    created_at: str = field(default_factory=now_iso)
    sent_at: str | None = None
    finished_at: str | None = None
    duration: float | None = None  # server-reported seconds (quick commands), seconds streamed (agents)
    # Agent turns (quick-command turns leave these empty)
    agent_id: str | None = None
    stop_reason: str | None = None
    message_id: str | None = None
    tokens: dict[str, int] | None = None  # {"input", "output", "user", "enrichment"}, as the server gave them
    sources: list[str] = field(default_factory=list)  # knowledge sources cited, as labels
    incomplete: bool = False  # ``result`` is part of an answer: the stream was cut, stopped or killed

    @property
    def is_agent(self) -> bool:
        return self.agent_id is not None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_TURN_STATUSES

    @property
    def needs_reattach(self) -> bool:
        """Created on the server but never seen finished: its answer can still be fetched."""
        return bool(self.execution_id) and not self.is_final

    @property
    def resumes_by_itself(self) -> bool:
        """Left running (quit, crash, lost connection): fetched again without being asked.

        A turn the user stopped watching (DETACHED) waits until asked (a key, `resume --all`)."""
        return self.needs_reattach and self.status != DETACHED

    @property
    def fetchable(self) -> bool:
        """Its answer can be fetched on demand, including older histories' CANCELLED executions."""
        return self.needs_reattach or (bool(self.execution_id) and self.status == CANCELLED)

    @property
    def maybe_sent(self) -> bool:
        """Saved, but StackSpot never confirmed it: it may or may not run there."""
        return self.execution_id is None and self.status in (PENDING, MAYBE_SENT)

    @property
    def status_words(self) -> str:
        """What became of the turn, in words: the app, the CLI and exports say the same."""
        if self.maybe_sent:
            return "may have been sent"
        if self.fetchable and not self.resumes_by_itself:
            return "stopped watching: its answer can be fetched"
        if self.needs_reattach:
            return "still running on StackSpot"
        return {"FAILURE": "FAILURE on StackSpot", CANCELLED: "stopped"}.get(self.status, self.status)

    def to_dict(self) -> dict[str, Any]:
        """What `dataclasses.asdict` gives (fields in order, JSON values copied), without its
        generic recursion: a page rewrite and an export call this for every turn."""
        data = {name: getattr(self, name) for name in _TURN_ORDER}
        data["steps"] = [{name: getattr(step, name) for name in _STEP_ORDER} for step in self.steps]
        for step in data["steps"]:
            step["sources"] = list(step["sources"])
        data["sources"] = list(self.sources)
        for name in ("input_data", "result", "tokens"):
            if isinstance(data[name], dict | list):
                data[name] = copy.deepcopy(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        """What ``cls(**data)`` gives (unknown keys dropped). A turn with every required field is
        filled in directly, bypassing the generated ``__init__``: a page read and an export build
        tens of thousands."""
        known = data if data.keys() <= _TURN_FIELDS else {k: v for k, v in data.items() if k in _TURN_FIELDS}
        steps = [_step(s) for s in known.get("steps") or [] if isinstance(s, dict)]
        if not known.keys() >= _TURN_REQUIRED:
            return cls(**{**known, "steps": steps})  # the constructor says what is missing
        turn = cls.__new__(cls)
        values = turn.__dict__
        values.update(_TURN_DEFAULTS)
        values["sources"] = []
        if "created_at" not in known:
            values["created_at"] = now_iso()
        values.update(known)
        values["steps"] = steps
        return turn


@dataclass
class Conversation:
    id: str  # local id (short, unique, typed on the CLI)
    slug: str  # quick command ("" in an agent conversation)
    title: str = ""
    conversation_id: str | None = None  # StackSpot's id, reused on every later turn
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    turn_count: int = 0  # turns present (deleted ones not counted)
    next_seq: int = 0  # seq of the next turn: seqs are never reused
    archived: bool = False
    pending: list[int] = field(default_factory=list)  # seqs that need re-attach
    agent_id: str | None = None  # the agent this conversation chats with, instead of a quick command

    @property
    def target(self) -> str:
        """Who answers, as shown in lists and headings: the quick command's slug or the agent."""
        return f"agent {self.agent_id}" if self.agent_id else self.slug

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        if data.keys() <= _CONVERSATION_FIELDS:  # the common case: no filtering pass
            return cls(**data)
        return cls(**{k: v for k, v in data.items() if k in _CONVERSATION_FIELDS})


_CONVERSATION_FIELDS = frozenset(Conversation.__dataclass_fields__)
_TURN_ORDER = tuple(Turn.__dataclass_fields__)
_TURN_FIELDS = frozenset(_TURN_ORDER)
_STEP_ORDER = tuple(StepSummary.__dataclass_fields__)
_STEP_FIELDS = frozenset(_STEP_ORDER)


def _defaults(cls: type) -> tuple[frozenset[str], dict[str, Any]]:
    """A dataclass's required fields, and the plain (not factory-made) defaults of the others."""
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    required = frozenset(n for n, f in fields.items() if f.default is MISSING and f.default_factory is MISSING)
    return required, {n: f.default for n, f in fields.items() if f.default is not MISSING}


_TURN_REQUIRED, _TURN_DEFAULTS = _defaults(Turn)
_STEP_REQUIRED, _STEP_DEFAULTS = _defaults(StepSummary)


def _step(data: dict[str, Any]) -> StepSummary:
    known = data if data.keys() <= _STEP_FIELDS else {k: v for k, v in data.items() if k in _STEP_FIELDS}
    if not known.keys() >= _STEP_REQUIRED:
        return StepSummary(**known)
    step = StepSummary.__new__(StepSummary)
    values = step.__dict__
    values.update(_STEP_DEFAULTS)
    values["sources"] = []
    values.update(known)
    return step
