"""The simulator's agents endpoint: pacing, memory, every fault, in-process and over loopback."""

from __future__ import annotations

import contextlib
import json
import threading

import httpx
import pytest
from conftest import SIM_URL, make_client
from httpx_sse import EventSource

from stackspot_tui.api import AgentClient, NotFoundError, PromptTooLongError, StackSpotClient, StreamCut, TextDelta
from stackspot_tui.sim import Simulator, SimulatorServer
from stackspot_tui.sim.agents import AGENT_FAULTS, AGENTS, Pacing

CREDENTIALS = {"client_id": "demo-client", "client_secret": "demo-secret", "grant_type": "client_credentials"}
PACING = Pacing(first_token=0.8, per_word=0.025)


class Sleeps:
    """A sync sleep that only records: the stream's pacing, read without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sim(sleeps: Sleeps) -> Simulator:
    return Simulator(pacing=PACING, sync_sleep=sleeps, max_prompt_chars=1000)


@pytest.fixture
def api(sim: Simulator) -> httpx.Client:
    client = httpx.Client(transport=sim.transport(), base_url="http://sim")
    token = client.post("/stackspot-freemium/oidc/oauth/token", data=CREDENTIALS).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def chat(api: httpx.Client, agent: str = "demo-assistant", prompt: str = "hello", **body) -> httpx.Response:
    payload = {"user_prompt": prompt, "streaming": True, "use_conversation": True, **body}
    return api.post(f"/v1/agent/{agent}/chat", json=payload)


def events(response: httpx.Response) -> list[dict | str]:
    assert response.headers["content-type"].startswith("text/event-stream")
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in EventSource(response).iter_sse()]


def text_of(docs: list) -> str:
    return "".join(d.get("message", "") for d in docs if isinstance(d, dict) and "stop_reason" not in d)


# -- streams ------------------------------------------------------------------------------------


def test_a_stream_is_words_then_the_final_event(api):
    docs = events(chat(api, prompt="explain this"))
    *words, final = docs
    assert len(words) > 20 and all(set(w) == {"message"} for w in words)
    assert "explain this" in text_of(docs)
    assert final["stop_reason"] == "stop" and len(final["message_id"]) == 26
    assert set(final["tokens"]) == {"user", "enrichment", "output"}
    assert final["source"][0]["type"] == "KNOWLEDGE_SOURCE" and final["knowledge_source_id"] == ["stackspot-ai-docs"]


def test_pacing_is_a_slow_first_token_then_steady_words(api, sleeps):
    docs = events(chat(api))
    assert sleeps.delays[0] == PACING.first_token
    assert set(sleeps.delays[1:]) == {PACING.per_word}
    assert len(sleeps.delays) == len(docs)  # every word and the final event are paced


def test_every_character_of_the_answer_is_streamed(api):
    prompt = "  spaced\n\n  out\t "
    streamed = text_of(events(chat(api, "demo-explainer", prompt, use_conversation=False)))
    whole = chat(api, "demo-explainer", prompt, use_conversation=False, streaming=False).json()["message"]
    assert streamed == whole and prompt in whole


def test_non_streaming_answer_is_one_json_document(api, sleeps):
    answer = chat(api, streaming=False).json()
    assert answer["message"].startswith("_New conversation")
    assert answer["stop_reason"] == "stop" and answer["tools_id"] == []
    assert not sleeps.delays


def test_flags_sent_as_strings_work(api):
    answer = chat(api, streaming="false", use_conversation="true", stackspot_knowledge="false").json()
    assert answer["conversation_id"]


# -- conversation memory -------------------------------------------------------------------------


def test_the_server_makes_a_conversation_id_and_remembers_it(api):
    first = chat(api, prompt="first question", streaming=False).json()
    conversation = first["conversation_id"]
    assert len(conversation) == 26
    second = chat(api, prompt="second", streaming=False, conversation_id=conversation).json()
    assert second["conversation_id"] == conversation
    assert "Turn 2" in second["message"] and "first question" in second["message"]
    assert second["tokens"]["enrichment"] > first["tokens"]["enrichment"]


def test_a_client_made_id_starts_a_conversation(api):
    made_up = "01J9ZZZZZZZZZZZZZZZZZZZZZZ"
    docs = events(chat(api, conversation_id=made_up))
    assert docs[-1]["conversation_id"] == made_up and "New conversation" in text_of(docs)


def test_without_use_conversation_nothing_is_remembered(api):
    answer = chat(api, streaming=False, use_conversation=False, conversation_id="01J9X").json()
    assert answer["conversation_id"] is None and "No conversation kept" in answer["message"]


# -- faults and variants ---------------------------------------------------------------------------


def test_unknown_agent_is_a_stackspot_shaped_404(api):
    response = chat(api, agent="no-such-agent")
    assert response.status_code == 404
    assert set(response.json()) == {"type", "code", "details"}


def test_rate_limit_alternates_without_retry_after(api):
    first, second = chat(api, agent="sim-agent-rate-limit"), chat(api, agent="sim-agent-rate-limit")
    assert first.status_code == 429 and "retry-after" not in first.headers
    assert first.json()["code"] == "INFERENCE_3008_CHAT_RATE_LIMIT_EXCEEDED"
    assert second.status_code == 200


def test_cut_stream_stops_halfway_with_a_transport_error(api):
    with api.stream("POST", "/v1/agent/sim-agent-cut/chat", json={"user_prompt": "x", "streaming": True}) as response:
        received = []
        with pytest.raises(httpx.RemoteProtocolError):
            for sse in EventSource(response).iter_sse():
                received.append(json.loads(sse.data))
    whole = chat(api, streaming=False).json()["message"]
    assert 0 < len(text_of(received)) < len(whole) and all("stop_reason" not in d for d in received)


def test_no_final_event_variant(api):
    docs = events(chat(api, agent="sim-agent-no-final"))
    assert docs and all(set(d) == {"message"} for d in docs)


def test_openai_variant_ends_with_done(api):
    docs = events(chat(api, agent="sim-agent-openai"))
    assert docs[-1] == "[DONE]" and "usage" in docs[-2]
    assert docs[0]["choices"][0]["delta"]["content"]


def test_tokens_in_input_output_shape(api):
    assert set(events(chat(api, agent="sim-agent-tokens-io"))[-1]["tokens"]) == {"input", "output"}


def test_slow_agent_thinks_ten_times_longer(api, sleeps):
    events(chat(api, agent="sim-agent-slow"))
    assert sleeps.delays[0] == 10 * PACING.first_token


def test_words_at_a_rate(api, sleeps):
    docs = events(chat(api, agent="words-50-at-2000"))
    assert text_of(docs).split() == [f"word{i}" for i in range(50)]  # one paragraph below 60 words
    # 0.5 ms pauses are carried over until they add up to a timer's worth: the rate holds
    assert sleeps.delays[0] == PACING.first_token and sum(sleeps.delays[1:]) == pytest.approx(50 / 2000, abs=0.005)
    assert min(sleeps.delays[1:]) >= 0.004


def test_over_long_prompt_and_over_long_conversation_are_400(api):
    too_long = chat(api, prompt="x" * 1001)
    assert too_long.status_code == 400 and too_long.json()["code"] == "INFERENCE_6001_LLM_MODEL_BAD_REQUEST"
    conversation = chat(api, prompt="y" * 600, streaming=False).json()["conversation_id"]
    follow_up = chat(api, prompt="z" * 600, conversation_id=conversation)
    assert follow_up.status_code == 400


@pytest.mark.parametrize("body", [{"streaming": True}, {"user_prompt": 5}, {"user_prompt": "  "}])
def test_missing_prompt_is_a_fastapi_422(api, body):
    response = api.post("/v1/agent/demo-assistant/chat", json=body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "user_prompt"]


def test_every_fault_id_is_known(api):
    for agent in AGENT_FAULTS:
        assert chat(api, agent=agent, streaming=False).status_code in (200, 429)


def test_chat_needs_a_token(sim):
    client = httpx.Client(transport=sim.transport(), base_url="http://sim")
    assert client.post("/v1/agent/demo-assistant/chat", json={"user_prompt": "x"}).status_code == 401


# -- listing and the request log ----------------------------------------------------------------


def test_listing_offers_the_demo_agents(api):
    listed = api.get("/v1/agents", params={"visibility": "personal"}).json()
    assert [a["id"] for a in listed] == list(AGENTS)


def test_listing_can_be_switched_off(sleeps):
    sim = Simulator(agent_listing=False)
    client = httpx.Client(transport=sim.transport(), base_url="http://sim")
    token = client.post("/r/oidc/oauth/token", data=CREDENTIALS).json()["access_token"]
    assert client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_request_log_keeps_the_conversation_fields_not_the_prompt(sim, api):
    chat(api, prompt="a secret plan", conversation_id="01J9C", streaming=False)
    entry = api.get("/_sim/requests").json()[-1]
    assert entry["chat"] == {
        "conversation_id": "01J9C",
        "use_conversation": True,
        "streaming": False,
        "prompt_chars": 13,
    }
    assert "secret" not in json.dumps(entry)


# -- through the agents client, on fake time ----------------------------------------------------------


@pytest.fixture
async def agents(simulator, fake_time):
    client = make_client(simulator, fake_time)
    yield AgentClient(client, api_url=SIM_URL, tools_url=SIM_URL)
    await client.aclose()


async def answer(agents: AgentClient, agent: str, prompt: str = "hi", **kwargs) -> tuple[str, object]:
    parts, last = [], None
    async with contextlib.aclosing(agents.chat(agent, prompt, **kwargs)) as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                parts.append(event.text)
            else:
                last = event.reply
    return "".join(parts), last


async def test_client_streams_from_the_simulator_on_fake_time(agents, fake_time):
    start = fake_time.now
    text, reply = await answer(agents, "demo-assistant", conversation_id="01J9FAKE")
    assert "## Answer" in text and reply.ended and reply.conversation_id == "01J9FAKE"
    assert fake_time.now - start == pytest.approx(0.8 + 0.025 * (len(fake_time.sleeps) - 1))


@pytest.mark.parametrize("agent", ["sim-agent-openai", "sim-agent-tokens-io", "sim-agent-rate-limit"])
async def test_client_reads_every_variant(agents, agent):
    text, reply = await answer(agents, agent)
    assert text and reply.ended and reply.tokens.input and reply.tokens.output


async def test_client_keeps_the_text_before_a_cut(agents):
    parts = []
    with pytest.raises(StreamCut):
        async with contextlib.aclosing(agents.chat("sim-agent-cut", "hi")) as stream:
            async for event in stream:
                parts.append(event.text)
    assert parts


async def test_client_sees_a_missing_final_event(agents):
    text, reply = await answer(agents, "sim-agent-no-final")
    assert text and not reply.ended


async def test_client_errors_from_the_simulator(agents):
    with pytest.raises(NotFoundError, match="not found"):
        await answer(agents, "nobody")
    with pytest.raises(PromptTooLongError):
        await answer(agents, "demo-assistant", "x" * 300_000)


async def test_client_lists_the_simulators_agents(agents):
    assert [a.id for a in await agents.list_agents()] == list(AGENTS)


# -- over loopback ----------------------------------------------------------------------------------


class Gate:
    """A sync sleep that holds the server's stream until the test lets it go on."""

    def __init__(self) -> None:
        self.calls = 0
        self.opened = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.calls += 1
        if self.calls == 2:  # after the first word: wait for the test to have seen it
            assert self.opened.wait(10)


@contextlib.asynccontextmanager
async def loopback_agents(simulator: Simulator):
    """An agents client talking to ``simulator`` through a real socket."""
    with SimulatorServer(simulator) as server:
        client = StackSpotClient(
            client_id="demo-client",
            client_secret="demo-secret",
            token_url=f"{server.url}/r/oidc/oauth/token",
            api_url=server.url,
        )
        try:
            yield AgentClient(client, api_url=server.url)
        finally:
            await client.aclose()


async def test_loopback_server_streams_before_the_answer_is_over():
    gate = Gate()
    async with loopback_agents(Simulator(sync_sleep=gate)) as agents:
        parts: list[str] = []
        async with contextlib.aclosing(agents.chat("demo-assistant", "hi")) as stream:
            async for event in stream:
                if not parts:  # the server holds the rest back until this word is seen here
                    gate.opened.set()
                if isinstance(event, TextDelta):
                    parts.append(event.text)
        assert "## Answer" in "".join(parts)


async def test_loopback_cut_is_a_stream_cut():
    async with loopback_agents(Simulator(sync_sleep=lambda s: None)) as agents:
        with pytest.raises(StreamCut, match="was cut"):
            await answer(agents, "sim-agent-cut")
        text, reply = await answer(agents, "demo-assistant")  # the next chat works
        assert text and reply.ended
