"""The agents client against SSE bodies of every shape and fault StackSpot's agents send, with respx."""

from __future__ import annotations

import json
from contextlib import aclosing

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from stackspot_tui.api import (
    AgentClient,
    BadRequestError,
    NotFoundError,
    PromptTooLongError,
    ProtocolError,
    RateLimitedError,
    ReplyEnded,
    RetryPolicy,
    ServerError,
    StackSpotClient,
    StreamCut,
    TextDelta,
)
from stackspot_tui.api.agents import AnswerAssembler, TokenUsage, _stream_events, parse_event

AGENT_API = "https://inference.test"
TOOLS_API = "https://tools.test"
TOKEN_URL = "https://idm.test/acme/oidc/oauth/token"
AGENT = "01J9AGENT0000000000000000X"
CHAT = f"{AGENT_API}/v1/agent/{AGENT}/chat"
LIST = f"{TOOLS_API}/v1/agents"
CONV = "01J9CONV00000000000000000Y"


def sse(*events: object, end: str = "\n\n") -> bytes:
    """An SSE body: dicts become JSON data lines, strings are sent as they are."""
    lines = [f"data: {json.dumps(e) if not isinstance(e, str) else e}" for e in events]
    return (end.join(lines) + end).encode()


def stream_answer(body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream", **headers}, content=body)


class Chunks(httpx.AsyncByteStream):
    """A body that arrives in pieces and may end with a transport error (a cut connection)."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(
            return_value=httpx.Response(200, json={"access_token": "tok", "expires_in": 1199, "token_type": "Bearer"})
        )
        yield router


@pytest.fixture
async def agents(fake_time):
    client = StackSpotClient(
        client_id="cid",
        client_secret="s3cret",
        token_url=TOKEN_URL,
        api_url="https://api.test",
        retry=RetryPolicy(max_retries=3),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    yield AgentClient(client, api_url=AGENT_API, tools_url=TOOLS_API)
    await client.aclose()


async def collect(agents: AgentClient, prompt: str = "hi", **kwargs) -> tuple[list[str], ReplyEnded]:
    deltas: list[str] = []
    ended = None
    async with aclosing(agents.chat(AGENT, prompt, **kwargs)) as events:
        async for event in events:
            assert ended is None, "nothing follows ReplyEnded"
            if isinstance(event, TextDelta):
                deltas.append(event.text)
            else:
                ended = event
    assert isinstance(ended, ReplyEnded)
    return deltas, ended


# -- the request --------------------------------------------------------------------------------


async def test_request_body_headers_and_token_as_documented(agents, mock):
    route = mock.post(CHAT).mock(return_value=stream_answer(sse({"message": "ok"}, {"stop_reason": "stop"})))
    await collect(agents, "explain\nthis", conversation_id=CONV)
    request = route.calls[0].request
    assert json.loads(request.content) == {
        "user_prompt": "explain\nthis",
        "streaming": True,
        "stackspot_knowledge": False,
        "return_ks_in_response": True,
        "use_conversation": True,
        "conversation_id": CONV,
        "upload_ids": [],
    }
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Accept"] == "text/event-stream"


async def test_first_turn_without_an_id_leaves_it_to_the_server(agents, mock):
    route = mock.post(CHAT).mock(return_value=stream_answer(sse({"message": "ok"}, {"stop_reason": "stop"})))
    await collect(agents)
    body = json.loads(route.calls[0].request.content)
    assert "conversation_id" not in body and body["use_conversation"] is True


async def test_an_agent_id_that_cannot_be_one_is_refused_before_sending(agents, mock):
    route = mock.post(url__startswith=AGENT_API)
    with pytest.raises(BadRequestError, match="not an agent id"):
        async with aclosing(agents.chat("../quick-commands", "hi")) as events:
            async for _ in events:
                pass
    assert not route.called


# -- StackSpot-shaped streams -------------------------------------------------------------------


async def test_deltas_in_order_then_the_final_event_with_user_enrichment_tokens(agents, mock):
    body = sse(
        {"message": "Hello"},
        {"message": ", "},
        {"message": "wörld ✓"},
        {
            "message": "",
            "stop_reason": "stop",
            "message_id": "01MSG",
            "tokens": {"user": 12, "enrichment": 3, "output": 230},
            "conversation_id": CONV,
            "source": [{"type": "KNOWLEDGE_SOURCE", "name": "Style guide", "slug": "style"}],
            "cross_account_source": ["ks-shared"],
        },
    )
    mock.post(CHAT).mock(return_value=stream_answer(body))
    deltas, ended = await collect(agents)
    assert deltas == ["Hello", ", ", "wörld ✓"]
    reply = ended.reply
    assert reply.ended and reply.stop_reason == "stop" and reply.message_id == "01MSG"
    assert reply.conversation_id == CONV
    assert reply.tokens == TokenUsage(input=15, output=230, user=12, enrichment=3)
    assert [s.label() for s in reply.sources] == ["Style guide", "ks-shared"]


async def test_final_event_with_input_output_tokens(agents, mock):
    body = sse({"message": "a"}, {"stop_reason": "stop", "tokens": {"input": 7, "output": 1}})
    mock.post(CHAT).mock(return_value=stream_answer(body))
    _, ended = await collect(agents)
    assert ended.reply.tokens.to_dict() == {"input": 7, "output": 1}


async def test_a_final_event_repeating_the_whole_answer_adds_nothing(agents, mock):
    body = sse({"message": "one "}, {"message": "two"}, {"message": "one two", "stop_reason": "stop"})
    mock.post(CHAT).mock(return_value=stream_answer(body))
    deltas, _ = await collect(agents)
    assert "".join(deltas) == "one two"


async def test_a_final_event_carrying_the_last_piece_adds_it(agents, mock):
    body = sse({"message": "one "}, {"message": "two", "stop_reason": "stop"})
    mock.post(CHAT).mock(return_value=stream_answer(body))
    deltas, ended = await collect(agents)
    assert deltas == ["one ", "two"] and ended.reply.ended


async def test_a_connection_left_open_after_the_final_event_is_not_waited_on(agents, mock):
    never = httpx.ReadTimeout("would hang")
    stream = Chunks([sse({"message": "done"}, {"stop_reason": "stop"})], error=never)
    mock.post(CHAT).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream))
    deltas, ended = await collect(agents)
    assert deltas == ["done"] and ended.reply.ended


async def test_conversation_id_from_any_event_is_kept(agents, mock):
    body = sse({"message": "a", "conversation_id": CONV}, {"stop_reason": "stop"})
    mock.post(CHAT).mock(return_value=stream_answer(body))
    _, ended = await collect(agents)
    assert ended.reply.conversation_id == CONV


# -- OpenAI-style streams -----------------------------------------------------------------------


async def test_openai_style_deltas_usage_and_done(agents, mock):
    body = sse(
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": None}]},
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
        "[DONE]",
    )
    mock.post(CHAT).mock(return_value=stream_answer(body))
    deltas, ended = await collect(agents)
    assert deltas == ["Hi", " there"]
    assert ended.reply.ended and ended.reply.stop_reason == "stop" and ended.reply.message_id == "chatcmpl-1"
    assert ended.reply.tokens.to_dict() == {"input": 9, "output": 2}


async def test_openai_stream_without_done_is_not_ended(agents, mock):
    body = sse({"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]})
    mock.post(CHAT).mock(return_value=stream_answer(body))
    deltas, ended = await collect(agents)
    assert deltas == ["Hi"] and not ended.reply.ended and ended.reply.stop_reason == "stop"


# -- faults ---------------------------------------------------------------------------------------


async def test_a_stream_without_its_final_event_keeps_the_text_and_says_so(agents, mock):
    mock.post(CHAT).mock(return_value=stream_answer(sse({"message": "partial "}, {"message": "answer"})))
    deltas, ended = await collect(agents)
    assert "".join(deltas) == "partial answer"
    assert not ended.reply.ended and ended.reply.stop_reason is None


async def test_a_stream_cut_halfway_yields_what_arrived_then_raises(agents, mock):
    first = sse({"message": "Half ", "conversation_id": CONV}, {"message": "an answer"})
    cut = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    stream = Chunks([first, b'data: {"message": "lo'], error=cut)
    mock.post(CHAT).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream))
    deltas: list[str] = []
    with pytest.raises(StreamCut, match="was cut") as caught:
        async with aclosing(agents.chat(AGENT, "hi")) as events:
            async for event in events:
                assert isinstance(event, TextDelta)
                deltas.append(event.text)
    assert deltas == ["Half ", "an answer"]  # the torn last event is not half-shown
    assert caught.value.reply.conversation_id == CONV
    assert caught.value.kind == "stream_cut"


async def test_silence_mid_stream_is_a_cut(agents, mock):
    stream = Chunks([sse({"message": "thinking"})], error=httpx.ReadTimeout("read timed out"))
    mock.post(CHAT).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream))
    with pytest.raises(StreamCut, match="sent nothing for too long"):
        await collect(agents)


async def test_an_error_event_mid_stream_ends_it_with_the_servers_words(agents, mock):
    body = sse({"message": "Start"}) + b'event: error\ndata: {"details": "model overloaded"}\n\n'
    mock.post(CHAT).mock(return_value=stream_answer(body))
    with pytest.raises(StreamCut, match="model overloaded"):
        await collect(agents)


async def test_an_error_document_mid_stream_ends_it(agents, mock):
    body = sse({"message": "Start"}, {"type": "InternalError", "details": "tool call failed"})
    mock.post(CHAT).mock(return_value=stream_answer(body))
    with pytest.raises(StreamCut, match="tool call failed"):
        await collect(agents)


async def test_odd_types_everywhere_are_tolerated(agents, mock):
    body = sse(
        {"message": None},
        {"message": 42},
        {"message": ["a"]},
        {"message": "text"},
        7,
        [1, 2],
        "plain words",
        "",
        {
            "stop_reason": 1,
            "message_id": {"x": 1},
            "tokens": {"user": "12", "enrichment": None, "output": -4, "input": True},
            "conversation_id": 5,
            "source": "not a list",
            "cross_account_source": [None, "", {"name": "KB"}, 3],
        },
    )
    mock.post(CHAT).mock(return_value=stream_answer(b": keep-alive comment\n\n" + body))
    deltas, ended = await collect(agents)
    assert deltas == ["text", "plain words"]
    reply = ended.reply
    assert reply.ended and reply.stop_reason == "1" and reply.message_id is None
    assert reply.tokens.to_dict() == {"input": 12, "user": 12}
    assert reply.conversation_id == "5"
    assert [s.label() for s in reply.sources] == ["KB", "3"]


async def test_null_stop_reason_on_every_chunk_does_not_end_the_stream(agents, mock):
    body = sse({"message": "a", "stop_reason": None}, {"message": "b", "stop_reason": "null"}, {"stop_reason": "stop"})
    mock.post(CHAT).mock(return_value=stream_answer(body))
    deltas, ended = await collect(agents)
    assert deltas == ["a", "b"] and ended.reply.stop_reason == "stop"


async def test_utf8_split_across_chunks_and_crlf_lines(agents, mock):
    raw = 'data: {"message": "ação ✓"}\r\n\r\ndata: {"stop_reason": "stop"}\r\n\r\n'.encode()
    cut_at = raw.index("ç".encode()) + 1  # inside the two bytes of ç
    stream = Chunks([raw[:cut_at], raw[cut_at:]])
    mock.post(CHAT).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream))
    deltas, _ = await collect(agents)
    assert deltas == ["ação ✓"]


async def test_an_unlabelled_stream_is_still_read_as_events(agents, mock):
    body = sse({"message": "x"}, {"stop_reason": "stop"})
    mock.post(CHAT).mock(return_value=httpx.Response(200, headers={"content-type": "text/plain"}, content=body))
    deltas, ended = await collect(agents)
    assert deltas == ["x"] and ended.reply.ended


async def test_an_html_page_with_status_200_is_a_clear_error(agents, mock):
    page = httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>gateway</html>")
    mock.post(CHAT).mock(return_value=page)
    with pytest.raises(ProtocolError, match="HTML page"):
        await collect(agents)


# -- non-streaming answers ----------------------------------------------------------------------


async def test_non_streaming_answer_is_one_delta_and_its_reply(agents, mock):
    answer = {
        "message": "# Whole answer",
        "stop_reason": "stop",
        "tokens": {"user": 12, "enrichment": 0, "output": 230},
        "conversation_id": CONV,
        "knowledge_source_id": ["ks-1"],
        "source": [],
        "cross_account_source": [],
        "tools_id": [],
    }
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=answer))
    deltas, ended = await collect(agents, streaming=False)
    assert json.loads(route.calls[0].request.content)["streaming"] is False
    assert route.calls[0].request.headers["Accept"] == "application/json"
    assert deltas == ["# Whole answer"]
    assert ended.reply.ended and ended.reply.conversation_id == CONV and ended.reply.tokens.output == 230
    assert [s.label() for s in ended.reply.sources] == ["ks-1"]


async def test_a_json_answer_to_a_streaming_request_is_read_whole(agents, mock):
    mock.post(CHAT).mock(return_value=httpx.Response(200, json={"message": "whole", "stop_reason": "stop"}))
    deltas, ended = await collect(agents)
    assert deltas == ["whole"] and ended.reply.ended


@pytest.mark.parametrize("body", [[1, 2], 3, None, {"stop_reason": "stop"}])
async def test_a_json_answer_without_a_message_is_a_protocol_error(agents, mock, body):
    answer = httpx.Response(200, headers={"content-type": "application/json"}, content=json.dumps(body).encode())
    mock.post(CHAT).mock(return_value=answer)
    with pytest.raises(ProtocolError, match="without a message"):
        await collect(agents, streaming=False)


# -- HTTP errors ------------------------------------------------------------------------------------


async def test_unknown_agent_shows_the_details(agents, mock):
    body = {"type": "NotFound", "code": "INFERENCE_1001_AGENT_NOT_FOUND", "details": "Agent not found"}
    mock.post(CHAT).mock(return_value=httpx.Response(404, json=body))
    with pytest.raises(NotFoundError, match=f"agent '{AGENT}' not found"):
        await collect(agents)


async def test_429_without_retry_after_backs_off_capped_then_answers(agents, mock, fake_time):
    limited = httpx.Response(
        429,
        json={"code": "INFERENCE_3008_CHAT_RATE_LIMIT_EXCEEDED", "details": "Too many requests"},
    )
    ok = stream_answer(sse({"message": "ok"}, {"stop_reason": "stop"}))
    route = mock.post(CHAT).mock(side_effect=[limited, limited, ok])
    deltas, _ = await collect(agents)
    assert deltas == ["ok"] and route.call_count == 3
    waits = [s for s in fake_time.sleeps if s > 0]
    assert len(waits) == 2 and all(0 < w <= RetryPolicy().cap for w in waits)


async def test_429_that_outlasts_the_retries_is_rate_limited(agents, mock):
    mock.post(CHAT).mock(return_value=httpx.Response(429, json={"code": "INFERENCE_3008_CHAT_RATE_LIMIT_EXCEEDED"}))
    with pytest.raises(RateLimitedError):
        await collect(agents)


async def test_prompt_over_the_models_context_gets_a_clear_message(agents, mock):
    body = {
        "type": "BadRequest",
        "code": "INFERENCE_6001_LLM_MODEL_BAD_REQUEST",
        "details": "This model's maximum context length is 128000 tokens",
    }
    mock.post(CHAT).mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(PromptTooLongError, match="prompt is too long") as caught:
        await collect(agents, "x" * 500_000)
    assert "new conversation" in str(caught.value) and caught.value.kind == "prompt_too_long"


async def test_another_400_stays_a_bad_request(agents, mock):
    mock.post(CHAT).mock(return_value=httpx.Response(400, json={"code": "OTHER", "details": "bad"}))
    with pytest.raises(BadRequestError) as caught:
        await collect(agents)
    assert not isinstance(caught.value, PromptTooLongError)


async def test_a_500_is_not_repeated_it_may_have_reached_the_agent(agents, mock):
    route = mock.post(CHAT).mock(return_value=httpx.Response(500, text="boom"))
    with pytest.raises(ServerError):
        await collect(agents)
    assert route.call_count == 1


async def test_a_503_gateway_answer_is_retried(agents, mock):
    ok = stream_answer(sse({"message": "ok"}, {"stop_reason": "stop"}))
    route = mock.post(CHAT).mock(side_effect=[httpx.Response(503, text="<html>busy</html>"), ok])
    deltas, _ = await collect(agents)
    assert deltas == ["ok"] and route.call_count == 2


# -- listing --------------------------------------------------------------------------------------


async def test_listing_agents_reads_ids_and_names(agents, mock):
    items = [
        {"id": "01AGENT1", "name": "Reviewer", "description": "reviews"},
        {"id": None, "name": "no id"},
        "junk",
        {"id": "01AGENT2", "name": 5},
    ]
    route = mock.get(LIST).mock(return_value=httpx.Response(200, json=items))
    listed = await agents.list_agents()
    assert [(a.id, a.name) for a in listed] == [("01AGENT1", "Reviewer"), ("01AGENT2", "5")]
    assert route.calls[0].request.url.params["visibility"] == "personal"


async def test_a_wrapped_agent_list_is_read_too(agents, mock):
    mock.get(LIST).mock(return_value=httpx.Response(200, json={"items": [{"id": "01A"}]}))
    assert [a.id for a in await agents.list_agents()] == ["01A"]


async def test_a_failing_agent_list_raises_a_typed_error(agents, mock):
    mock.get(LIST).mock(return_value=httpx.Response(403, json={"details": "no"}))
    with pytest.raises(Exception) as caught:
        await agents.list_agents()
    assert caught.value.__class__.__name__ == "ForbiddenError"


# -- properties -----------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.text(max_size=200), st.sampled_from(["", "message", "error"]))
def test_parse_event_never_raises(data, event):
    parse_event(data, event)


@settings(deadline=None)
@given(
    words=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8),
)
async def test_any_chunking_of_a_stream_gives_the_same_text(words, cuts):
    body = sse(*[{"message": w} for w in words], {"stop_reason": "stop"})
    points = sorted({c % len(body) for c in cuts} - {0})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Chunks(chunks))
    events = [event async for event in _stream_events(response, AnswerAssembler(), "agent")]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(words)
    assert isinstance(events[-1], ReplyEnded) and events[-1].reply.ended


def test_an_event_with_only_text_or_empty_metadata_leaves_the_reply_as_it_was():
    from stackspot_tui.api.agents import AgentReply

    reply = AgentReply().merged({"message_id": "m1", "tokens": {"input": 3, "output": 4}, "source": ["doc"]})
    empty = {
        "stop_reason": None,
        "tokens": None,
        "usage": {},
        "source": [],
        "knowledge_source_id": [],
        "message_id": "",
    }
    assert reply.merged({"message": "word "}) is reply
    assert reply.merged({"message": "word ", **empty}) == reply
    assert reply.merged({"stop_reason": "null", "message": "x"}) == reply
    assert reply.merged({"tokens": {"output": 9}}).tokens.output == 9  # metadata still merges
