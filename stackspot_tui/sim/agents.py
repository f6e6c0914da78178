"""The simulator's agents endpoint: chat over SSE or JSON, and listing, in each wire variant.

An answer is planned as data — a list of (delay, bytes) chunks — and the adapters pace it: the
loopback server sleeps for real, the in-process transport awaits the simulator's sleep (a fake
clock in tests). Pacing: a slow first token, then steady words.

Agent ids, besides the demo agents of :data:`AGENTS`:

| id                        | behaviour                                                            |
|---------------------------|----------------------------------------------------------------------|
| `sim-agent-openai`        | OpenAI-style events (`choices[0].delta.content`), `data: [DONE]`     |
| `sim-agent-tokens-io`     | final event's tokens as `{input, output}`                            |
| `sim-agent-rate-limit`    | odd-numbered chats (1st, 3rd...) answer 429, no `Retry-After`        |
| `sim-agent-cut`           | the connection is cut halfway through the answer                     |
| `sim-agent-no-final`      | the stream ends cleanly without its final event                      |
| `sim-agent-slow`          | the first token comes 10 × later                                     |
| `words-<n>-at-<rate>`     | n words at <rate> words per second after the first token (benchmarks)|

Any other id is a 404. A conversation whose prompts add up to more than ``max_prompt_chars``
is refused with 400 `INFERENCE_6001_LLM_MODEL_BAD_REQUEST`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..fences import code_fence
from ..ids import ulid
from ..wording import counted
from .catalogue import DOCS, _memory, _short
from .response import stackspot_error, validation_error

AGENT_FAULTS = (
    "sim-agent-openai",
    "sim-agent-tokens-io",
    "sim-agent-rate-limit",
    "sim-agent-cut",
    "sim-agent-no-final",
    "sim-agent-slow",
)
_WORDS = re.compile(r"^words-(\d{1,6})-at-(\d{1,6})$")
_SLOW_FACTOR = 10
_PIECES = re.compile(r"\s*\S+\s*|\s+")  # a word with the spaces around it: every character is sent


@dataclass(frozen=True)
class Pacing:
    """How an answer streams: ``first_token`` seconds of thought, then a word every ``per_word``."""

    first_token: float = 0.8
    per_word: float = 0.025  # 40 words/s, an everyday LLM pace


@dataclass(frozen=True)
class SimAgent:
    id: str
    name: str
    description: str
    answer: Callable[[str], str]
    sources: tuple[tuple[str, str], ...] = ()  # (name, slug) of knowledge sources cited


def _assistant(prompt: str) -> str:
    return (
        "## Answer\n\n"
        f"You asked: “{_short(prompt, 120)}”. Here is how I would go about it:\n\n"
        "1. **Read** the code or the question once, end to end, before changing anything.\n"
        "2. **Name** the smallest change that answers it, and write a test that shows the problem.\n"
        "3. **Change** one thing at a time; run the test after each step.\n\n"
        "A sketch in Python:\n\n"
        + code_fence("def solve(question: str) -> str:\n    steps = plan(question)\n    return run(steps)", "python")
        + "\n\n> Tip: StackSpot agents keep the conversation, so you can ask a follow-up right away.\n"
    )


def _explainer(prompt: str) -> str:
    lines = prompt.count("\n") + 1
    return (
        "## What this does\n\n"
        f"The input has {counted(lines, 'line')}. Read top to bottom:\n\n"
        + code_fence(prompt)
        + "\n\n- It runs without touching the network or the file system.\n"
        "- Each name says what it holds; nothing is hidden in globals.\n\n"
        "| part | role |\n|---|---|\n| input | what you pasted |\n| output | this explanation |\n"
    )


AGENTS: dict[str, SimAgent] = {
    agent.id: agent
    for agent in (
        SimAgent(
            "demo-assistant",
            "StackSpot assistant",
            "Answers questions about code and StackSpot",
            _assistant,
            (("StackSpot AI docs", "stackspot-ai-docs"),),
        ),
        SimAgent(
            "demo-explainer",
            "Code explainer",
            "Explains a piece of code step by step",
            _explainer,
            (("Code explanations", "code-explanations"), ("Python style", "python-style")),
        ),
    )
}


def agents_listing() -> list[dict[str, Any]]:
    """What `GET /v1/agents` answers: the demo agents (fault ids are for tests, not pickers)."""
    return [
        {"id": a.id, "name": a.name, "description": a.description, "visibility": "PERSONAL"} for a in AGENTS.values()
    ]


def known_agent(agent_id: str) -> bool:
    return agent_id in AGENTS or agent_id in AGENT_FAULTS or _WORDS.match(agent_id) is not None


@dataclass
class Chat:
    """One planned answer: what the handler turns into a response."""

    status: int
    document: Any = None  # the JSON answer (errors, non-streaming)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (delay before, data) of a stream
    cut: bool = False  # end the connection after the chunks, without finishing the body


class AgentDesk:
    """The agents' state: conversation memory and request counts. The simulator's lock guards it."""

    def __init__(self, *, pacing: Pacing, max_prompt_chars: int, wall: Callable[[], float]) -> None:
        self.pacing = pacing
        self.max_prompt_chars = max_prompt_chars
        self._wall = wall
        self._memory: dict[str, list[str]] = {}  # conversation id -> its prompts so far
        self._chats: dict[str, int] = {}  # agent id -> chats received

    def chat(self, agent_id: str, body: bytes) -> Chat:
        if not known_agent(agent_id):
            return _error(404, "NotFound", "INFERENCE_1003_AGENT_NOT_FOUND", f"Agent {agent_id} not found")
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Chat(422, validation_error((("body",), "Invalid JSON", "value_error.jsondecode")))
        prompt = payload.get("user_prompt") if isinstance(payload, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            return Chat(422, validation_error((("body", "user_prompt"), "field required", "value_error.missing")))
        count = self._chats[agent_id] = self._chats.get(agent_id, 0) + 1
        if agent_id == "sim-agent-rate-limit" and count % 2 == 1:
            return _error(
                429,
                "TooManyRequests",
                "INFERENCE_3008_CHAT_RATE_LIMIT_EXCEEDED",
                "Too many requests. Your limit is 100 requests per minute",
            )
        remembers = _flag(payload.get("use_conversation"))
        conversation_id = _str(payload.get("conversation_id")) if remembers else None
        if remembers and not conversation_id:
            conversation_id = ulid(self._wall())
        earlier = list(self._memory.get(conversation_id, [])) if conversation_id else []
        if len(prompt) + sum(len(p) for p in earlier) > self.max_prompt_chars:
            return _error(
                400,
                "BadRequest",
                "INFERENCE_6001_LLM_MODEL_BAD_REQUEST",
                f"The prompt exceeds the model's context window ({self.max_prompt_chars} characters "
                "with the conversation so far)",
            )
        if conversation_id:
            self._memory.setdefault(conversation_id, []).append(prompt)
        text = _answer(agent_id, prompt, conversation_id, earlier)
        final = self._final(agent_id, prompt, text, conversation_id, len(earlier))
        if not _flag(payload.get("streaming")):
            return Chat(200, {"message": text, **final, "tools_id": []})
        return self._stream(agent_id, text, final)

    def _final(
        self, agent_id: str, prompt: str, text: str, conversation_id: str | None, turns_before: int
    ) -> dict[str, Any]:
        user, output = _tokens(prompt), _tokens(text)
        enrichment = 40 * turns_before  # the conversation so far, sent to the model again
        agent = AGENTS.get(agent_id)
        cited = agent.sources if agent else ()
        final: dict[str, Any] = {
            "stop_reason": "stop",
            "message_id": ulid(self._wall()),
            "tokens": {"input": user + enrichment, "output": output}
            if agent_id == "sim-agent-tokens-io"
            else {"user": user, "enrichment": enrichment, "output": output},
            "conversation_id": conversation_id,
            "knowledge_source_id": [slug for _, slug in cited],
            "source": [
                {
                    "type": "KNOWLEDGE_SOURCE",
                    "name": name,
                    "slug": slug,
                    "document_type": "CUSTOM",
                    "document_score": round(0.9 - 0.07 * i, 2),
                    "document_id": f"{slug}-doc-{i}",
                }
                for i, (name, slug) in enumerate(cited)
            ],
            "cross_account_source": [],
        }
        return final

    def _stream(self, agent_id: str, text: str, final: dict[str, Any]) -> Chat:
        first, per_word = self.pacing.first_token, self.pacing.per_word
        match = _WORDS.match(agent_id)
        if match:
            per_word = 1 / max(1, int(match.group(2)))
        if agent_id == "sim-agent-slow":
            first *= _SLOW_FACTOR
        pieces = _PIECES.findall(text)
        openai = agent_id == "sim-agent-openai"
        chunks = [
            (first if i == 0 else per_word, _event(_openai_delta(p, final) if openai else {"message": p}))
            for i, p in enumerate(pieces)
        ]
        if agent_id == "sim-agent-cut":
            return Chat(200, chunks=chunks[: max(1, len(chunks) // 2)], cut=True)
        if openai:
            usage = {"prompt_tokens": final["tokens"]["user"], "completion_tokens": final["tokens"]["output"]}
            chunks.append((0.0, _event({"id": final["message_id"], "choices": [], "usage": usage})))
            chunks.append((0.0, b"data: [DONE]\n\n"))
        elif agent_id != "sim-agent-no-final":
            chunks.append((per_word, _event(final)))
        return Chat(200, chunks=chunks)


def _answer(agent_id: str, prompt: str, conversation_id: str | None, earlier: list[str]) -> str:
    match = _WORDS.match(agent_id)
    if match:
        words = [f"word{i}" for i in range(int(match.group(1)))]
        # Paragraphs of 60 words, as answers come: a Markdown block is never the whole answer.
        return "\n\n".join(" ".join(words[at : at + 60]) for at in range(0, len(words), 60))
    agent = AGENTS.get(agent_id)
    body = agent.answer(prompt) if agent else _assistant(prompt)
    memory = _memory(conversation_id, earlier) if conversation_id else "_No conversation kept._\n\n"
    return memory + body + f"\n\nMore: {DOCS}/agents/\n"


def _openai_delta(piece: str, final: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": final["message_id"],
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": piece}}],
    }


def _event(document: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(document, ensure_ascii=False).encode() + b"\n\n"


def _error(status: int, kind: str, code: str, details: str) -> Chat:
    return Chat(status, stackspot_error(kind, code, details))


def _flag(value: Any) -> bool:
    """Booleans, or the strings some clients send ("true"/"false")."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 4 / 3))
