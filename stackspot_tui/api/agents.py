"""StackSpot AI agents: chat, streamed as Server-Sent Events or as one JSON answer, and listing.

Rides on the quick-command client: the same httpx client, token and retry policy. Every field of every event may be absent, null or of another type: parsing
never raises on odd fields, and what arrived before a cut is handed over before the error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import EventSource

from ..config import DEFAULT_AGENT_API_URL, DEFAULT_AGENT_TOOLS_URL
from ..textsafe import one_line
from .client import RetryCallback, StackSpotClient, _http_error
from .errors import (
    BadRequestError,
    ErrorBody,
    PromptTooLongError,
    ProtocolError,
    ServerError,
    StackSpotError,
    StreamCut,
)
from .models import Source, _dict, _int, _str
from .names import valid_agent_id

PROMPT_TOO_LONG_CODE = "INFERENCE_6001_LLM_MODEL_BAD_REQUEST"
RATE_LIMIT_CODE = "INFERENCE_3008_CHAT_RATE_LIMIT_EXCEEDED"

_SOURCE_KEYS = ("source", "sources", "cross_account_source", "knowledge_source_id")


# -- what an answer says ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenUsage:
    """Token counts, whichever shape the server used: ``{input, output}`` or ``{user, enrichment, output}``."""

    input: int | None = None
    output: int | None = None
    user: int | None = None
    enrichment: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> TokenUsage:
        data = _dict(raw)
        user, enrichment = _count(data.get("user")), _count(data.get("enrichment"))
        given = _count(data.get("input"))
        if given is None:
            given = _count(data.get("prompt_tokens"))  # OpenAI's usage
        if given is None and (user is not None or enrichment is not None):
            given = (user or 0) + (enrichment or 0)
        output = _count(data.get("output"))
        if output is None:
            output = _count(data.get("completion_tokens"))
        return cls(input=given, output=output, user=user, enrichment=enrichment)

    def to_dict(self) -> dict[str, int]:
        return {name: value for name, value in vars(self).items() if value is not None}

    def merged(self, newer: TokenUsage) -> TokenUsage:
        return TokenUsage(**{**self.to_dict(), **newer.to_dict()})


def _count(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and number >= 0 else None


# The keys `AgentReply.merged` reads: an event whose values there are all empty adds nothing.
_REPLY_KEYS = (
    "stop_reason",
    "message_id",
    "conversation_id",
    "tokens",
    "usage",
    "source",
    "sources",
    "cross_account_source",
    "knowledge_source_id",
)


@dataclass(frozen=True)
class AgentReply:
    """What an answer said besides its text: the final event, or the one JSON answer."""

    stop_reason: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    tokens: TokenUsage = field(default_factory=TokenUsage)
    sources: tuple[Source, ...] = ()
    ended: bool = False  # the final event (or [DONE], or the JSON answer) arrived

    def merged(self, doc: dict[str, Any]) -> AgentReply:
        """This reply with what one event document adds (later values win, sources add up)."""
        if not any(doc.get(key) for key in _REPLY_KEYS):
            return self  # a text-only event (nearly all of a stream): merging it costs the loop per word
        stop = _str(doc.get("stop_reason"))
        sources = self.sources + tuple(s for s in _sources(doc) if s.label() not in {x.label() for x in self.sources})
        tokens = doc.get("tokens") if "tokens" in doc else doc.get("usage")
        return replace(
            self,
            stop_reason=stop if stop and stop != "null" else self.stop_reason,
            message_id=_str(doc.get("message_id")) or self.message_id,
            conversation_id=_str(doc.get("conversation_id")) or self.conversation_id,
            tokens=self.tokens.merged(TokenUsage.parse(tokens)),
            sources=sources,
        )


def _sources(doc: dict[str, Any]) -> list[Source]:
    found: list[Source] = []
    for key in ("source", "sources", "cross_account_source"):
        value = doc.get(key)
        if isinstance(value, list):
            found += [Source.parse(item) for item in value if item not in (None, "", {})]
    # knowledge_source_id lists the knowledge sources behind the cited documents: new ones only.
    named = {_str(_dict(s.raw).get(k)) for s in found for k in ("slug", "id", "knowledge_source_id")}
    ids = doc.get("knowledge_source_id")
    if isinstance(ids, list):
        found += [Source.parse(item) for item in ids if item not in (None, "", {}) and _str(item) not in named]
    return found


@dataclass(frozen=True)
class TextDelta:
    """The next piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class ReplyEnded:
    """The answer is over; ``reply.ended`` is False when the stream closed without its final event."""

    reply: AgentReply


AgentEvent = TextDelta | ReplyEnded


@dataclass(frozen=True)
class AgentInfo:
    id: str
    name: str | None = None
    description: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> AgentInfo | None:
        data = _dict(raw)
        agent_id = _str(data.get("id")) or _str(data.get("agent_id")) or _str(data.get("slug"))
        if not agent_id or not valid_agent_id(agent_id.strip()):
            return None
        name = _str(data.get("name")) or _str(data.get("title"))
        return cls(agent_id.strip(), one_line(name, 80) if name else None, _str(data.get("description")))


# -- one event --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventPiece:
    """What one SSE event means: text to add, metadata, the end, or an error reported in-stream."""

    text: str = ""
    doc: dict[str, Any] | None = None  # metadata to merge into the reply
    final: bool = False  # StackSpot's final event (stop_reason) or OpenAI's [DONE]
    error: str | None = None


def parse_event(data: str, event: str = "") -> EventPiece:
    """Read one event's ``data`` in any shape the document lists; never raises."""
    if data.strip() == "[DONE]":
        return EventPiece(final=True)
    if not data.strip():
        return EventPiece()  # keep-alive
    try:
        doc = json.loads(data)
    except ValueError:
        doc = data  # plain text data: the text itself
    if event == "error":
        detail = _error_text(doc) if isinstance(doc, dict) else _str(doc)
        return EventPiece(error=one_line(detail or data))
    return piece_of(doc)


def piece_of(doc: Any) -> EventPiece:
    """What one decoded event document (or a whole JSON answer) means."""
    if isinstance(doc, str):
        return EventPiece(text=doc)
    if not isinstance(doc, dict):
        return EventPiece()  # a number or a list carries nothing we can show
    choices = doc.get("choices")
    if isinstance(choices, list):
        return _openai_piece(doc, choices)
    text = doc.get("message")
    text = text if isinstance(text, str) else ""
    stop = _str(doc.get("stop_reason"))
    error = _error_text(doc)
    if error and not text and not stop:
        return EventPiece(error=one_line(error))
    return EventPiece(text=text, doc=doc, final=bool(stop and stop != "null"))


def _openai_piece(doc: dict[str, Any], choices: list[Any]) -> EventPiece:
    first = _dict(choices[0]) if choices else {}
    delta = _dict(first.get("delta")) or _dict(first.get("message"))
    content = delta.get("content")
    meta: dict[str, Any] = {"message_id": doc.get("id"), "usage": doc.get("usage")}
    finish = _str(first.get("finish_reason"))
    if finish:
        meta["stop_reason"] = finish
    # [DONE] ends an OpenAI-style stream, not finish_reason: usage may still follow.
    return EventPiece(text=content if isinstance(content, str) else "", doc=meta)


def _error_text(doc: dict[str, Any]) -> str | None:
    """The error an event document reports, if it is one (``message`` alone is text, not an error)."""
    if not any(doc.get(key) for key in ("details", "detail", "error")):
        return None
    return ErrorBody.from_json({k: v for k, v in doc.items() if k != "message"}).summary()


class AnswerAssembler:
    """Turns event pieces into the deltas and reply of one answer."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.reply = AgentReply()

    def add(self, piece: EventPiece) -> str:
        """The text this piece adds (a final event may repeat the whole answer: only news counts)."""
        text = piece.text
        if piece.doc is not None:
            self.reply = self.reply.merged(piece.doc)
        if piece.final:
            self.reply = replace(self.reply, ended=True)
            so_far = "".join(self._parts)
            if so_far and text.startswith(so_far):
                text = text[len(so_far) :]
        if text:
            self._parts.append(text)
        return text


# -- the client -------------------------------------------------------------------------------


def chat_body(
    prompt: str,
    *,
    conversation_id: str | None,
    use_conversation: bool = True,
    streaming: bool = True,
    knowledge: bool = False,
    upload_ids: Iterable[str] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_prompt": prompt,
        "streaming": streaming,
        "stackspot_knowledge": knowledge,
        "return_ks_in_response": True,
        "use_conversation": use_conversation,
        "upload_ids": list(upload_ids),
    }
    if conversation_id:
        body["conversation_id"] = conversation_id
    return body


class AgentClient:
    """Chat with agents and list them, through a :class:`StackSpotClient`'s connection and token."""

    def __init__(
        self,
        client: StackSpotClient,
        *,
        api_url: str = DEFAULT_AGENT_API_URL,
        tools_url: str = DEFAULT_AGENT_TOOLS_URL,
        stream_timeout: float = 120.0,
    ) -> None:
        self.client = client
        self.api_url = api_url.rstrip("/")
        self.tools_url = tools_url.rstrip("/")
        # An agent may think (tools, knowledge) for a long while before its first word.
        self.stream_timeout = stream_timeout

    @classmethod
    def from_settings(cls, settings: Any, client: StackSpotClient) -> AgentClient:
        return cls(
            client,
            api_url=settings.agent_api_url,
            tools_url=settings.agent_tools_url,
            stream_timeout=max(120.0, settings.request_timeout),
        )

    async def chat(
        self,
        agent_id: str,
        prompt: str,
        *,
        conversation_id: str | None = None,
        use_conversation: bool = True,
        streaming: bool = True,
        knowledge: bool = False,
        on_retry: RetryCallback | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Yield the answer's text as it arrives, then one :class:`ReplyEnded`.

        A stream that stops early raises :class:`StreamCut` after the text that did arrive.
        Use it under ``contextlib.aclosing`` so an early exit releases the connection at once.
        """
        if not valid_agent_id(agent_id):
            raise BadRequestError(f"'{one_line(agent_id, 60)}' is not an agent id (letters, digits, _ . : -)")
        url = f"{self.api_url}/v1/agent/{quote(agent_id, safe='')}/chat"
        what = f"agent '{agent_id}'"
        response = await self.client._request(
            "POST",
            url,
            what=what,
            json=chat_body(
                prompt,
                conversation_id=conversation_id,
                use_conversation=use_conversation,
                streaming=streaming,
                knowledge=knowledge,
            ),
            headers={"Accept": "text/event-stream" if streaming else "application/json"},
            timeout=httpx.Timeout(self.stream_timeout, connect=min(10.0, self.stream_timeout)),
            idempotent=False,  # a repeated chat is a second answer (and a second quota use)
            stream=True,
            error_for=_agent_error,
            on_retry=on_retry,
        )
        assembler = AnswerAssembler()
        try:
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind == "application/json" or kind.endswith("+json"):
                await response.aread()
                for event in _one_answer(response, what):
                    yield event
                return
            if kind == "text/html":
                raise ProtocolError(f"{what} answered an HTML page, not an answer (a proxy or gateway in the way?)")
            async for event in _stream_events(response, assembler, what):
                yield event
        except httpx.RequestError as exc:
            raise StreamCut(_cut_message(exc, what), reply=assembler.reply) from None
        finally:
            await response.aclose()

    async def list_agents(self, visibility: str = "personal") -> list[AgentInfo]:
        """The account's agents. An optional service: callers should tolerate its errors."""
        response = await self.client._request(
            "GET", f"{self.tools_url}/v1/agents", what="the agent list", params={"visibility": visibility}
        )
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise ProtocolError("the agent list is not JSON") from None
        if isinstance(data, dict):  # tolerate a wrapped list
            data = next((data[k] for k in ("items", "agents", "content", "data") if isinstance(data.get(k), list)), [])
        agents = [AgentInfo.parse(item) for item in data] if isinstance(data, list) else []
        return [agent for agent in agents if agent is not None]


async def _stream_events(response: httpx.Response, assembler: AnswerAssembler, what: str) -> AsyncIterator[AgentEvent]:
    if not response.headers.get("content-type", "").lower().startswith("text/event-stream"):
        # Mislabelled (or unlabelled) streams are read as events all the same.
        headers = {**response.headers, "content-type": "text/event-stream; charset=utf-8"}
        response = httpx.Response(response.status_code, headers=headers, stream=response.stream)
    async for sse in EventSource(response).aiter_sse():
        piece = parse_event(sse.data, sse.event)
        if piece.error is not None:
            raise StreamCut(f"{what} stopped with an error: {piece.error}", reply=assembler.reply)
        text = assembler.add(piece)
        if text:
            yield TextDelta(text)
        if piece.final:  # StackSpot's final event or [DONE]: do not wait on a connection left open
            break
    yield ReplyEnded(assembler.reply)


def _one_answer(response: httpx.Response, what: str) -> list[AgentEvent]:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise ProtocolError(f"{what} answered malformed JSON") from None
    piece = piece_of(data)
    if piece.error is not None:
        raise ServerError(f"{what} answered an error: {piece.error}")
    if not isinstance(data, str) and not (isinstance(data, dict) and ("message" in data or "choices" in data)):
        raise ProtocolError(f"{what} answered JSON without a message")
    assembler = AnswerAssembler()
    text = assembler.add(replace(piece, final=True))
    return ([TextDelta(text)] if text else []) + [ReplyEnded(assembler.reply)]


def _agent_error(response: httpx.Response, what: str) -> StackSpotError:
    error = _http_error(response, what)
    code = error.code or ""
    if response.status_code == 400 and code.startswith("INFERENCE_6001"):
        return PromptTooLongError(
            f"the prompt is too long for {what}: with the conversation so far it exceeds the model's context "
            f"(HTTP 400 {code}). Shorten it, or start a new conversation",
            status_code=400,
        )
    return error


def _cut_message(exc: httpx.RequestError, what: str) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"{what} sent nothing for too long; the answer stream was abandoned"
    return f"the answer stream from {what} was cut ({one_line(str(exc) or type(exc).__name__, 100)})"
