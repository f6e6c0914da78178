"""The simulator speaks the documented wire format; time is a fake clock, never a sleep."""

from __future__ import annotations

import http.client
import itertools
import json
import signal
import subprocess
import sys
import textwrap

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackspot_tui.api.models import Execution
from stackspot_tui.sim import CATALOGUE, FAULT_SLUGS, Simulator, SimulatorServer, quick_commands, ulid

WALL = 1_800_000_000.0  # 2027-01-15T08:00:00Z
CREDENTIALS = {"client_id": "demo-client", "client_secret": "demo-secret", "grant_type": "client_credentials"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return Simulator(duration=10.0, clock=clock, wall_clock=lambda: WALL)


def anonymous(sim: Simulator) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url="http://sim")


def authorized(sim: Simulator) -> httpx.Client:
    client = anonymous(sim)
    token = client.post("/stackspot-freemium/oidc/oauth/token", data=CREDENTIALS).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture
def api(sim: Simulator) -> httpx.Client:
    return authorized(sim)


def create(
    api: httpx.Client, slug: str = "code-review", text: object = "x = 1", conversation: str | None = None
) -> httpx.Response:
    params = {"conversation_id": conversation} if conversation else {}
    return api.post(f"/v1/quick-commands/create-execution/{slug}", params=params, json={"input_data": text})


def start(api: httpx.Client, slug: str = "code-review", text: object = "x = 1", conversation: str | None = None) -> str:
    response = create(api, slug, text, conversation)
    assert response.status_code == 200, response.text
    return response.json()


def poll(api: httpx.Client, execution_id: str) -> Execution:
    response = api.get(f"/v1/quick-commands/callback/{execution_id}")
    assert response.status_code == 200, response.text
    return Execution.parse(response.json())


# -- auth -------------------------------------------------------------------------------------


def test_token_answer_is_keycloak_like(sim):
    response = anonymous(sim).post("/any-realm/oidc/oauth/token", data=CREDENTIALS)
    body = response.json()
    assert response.status_code == 200 and body["access_token"].startswith("sim-")
    assert {k: v for k, v in body.items() if k != "access_token"} == {
        "expires_in": 1199,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "openid",
    }


@pytest.mark.parametrize(
    "change, status, error",
    [
        ({"client_secret": "nope"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
    ],
)
def test_token_errors(sim, change, status, error):
    form = {k: v for k, v in {**CREDENTIALS, **change}.items() if v is not None}
    response = anonymous(sim).post("/r/oidc/oauth/token", data=form)
    assert response.status_code == status and response.json()["error"] == error
    assert response.json()["error_description"]


def test_token_path_needs_one_realm_segment(sim):
    assert anonymous(sim).post("/oidc/oauth/token", data=CREDENTIALS).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer sim-made-up", "Basic abc"])
def test_api_refuses_missing_or_unknown_tokens(sim, header):
    headers = {"Authorization": header} if header else {}
    response = anonymous(sim).post(
        "/v1/quick-commands/create-execution/echo", json={"input_data": "x"}, headers=headers
    )
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"


def test_token_expires_on_the_clock(sim, api, clock):
    clock.now = 1198.9
    assert create(api).status_code == 200
    clock.now = 1199.0
    assert create(api).status_code == 401
    assert create(authorized(sim)).status_code == 200  # a fresh token works again


def test_expire_tokens_endpoint(sim, api):
    assert anonymous(sim).post("/_sim/expire-tokens").status_code == 204
    assert create(api).status_code == 401
    assert create(authorized(sim)).status_code == 200


def test_bearer_scheme_is_case_insensitive(api):
    api.headers["Authorization"] = api.headers["Authorization"].replace("Bearer", "bearer")
    assert create(api).status_code == 200


# -- progress ---------------------------------------------------------------------------------


def test_progress_created_running_completed_with_steps(api, clock):
    execution_id = start(api)
    assert len(execution_id) == 26

    first = poll(api, execution_id)
    assert (first.status, first.progress.percentage, first.steps, first.result) == ("CREATED", 0.0, (), None)
    assert first.execution_id == execution_id and first.slug == "code-review"
    assert first.progress.start == "2027-01-15T08:00:00Z" and first.progress.end is None

    clock.now = 1.0  # 10%: running, the knowledge step has started
    started = poll(api, execution_id)
    assert (started.status, started.progress.percentage) == ("RUNNING", 0.1)
    assert [(s.name, s.done) for s in started.steps] == [("fetch-knowledge", False)]

    clock.now = 5.0
    middle = poll(api, execution_id)
    assert (middle.status, middle.progress.percentage) == ("RUNNING", 0.5)
    assert [(s.name, s.order, s.type, s.done) for s in middle.steps] == [
        ("fetch-knowledge", 1, "KNOWLEDGE_SOURCE", True),
        ("analyze", 2, "LLM", False),
    ]
    assert middle.steps[0].sources[0].url.startswith("https://docs.stackspot.com/")
    assert middle.progress.end is None and middle.progress.duration is None and middle.result is None

    clock.now = 9.999
    assert poll(api, execution_id).progress.percentage == 0.99  # 1.0 is kept for COMPLETED

    clock.now = 10.0
    done = poll(api, execution_id)
    assert (done.status, done.progress.percentage, done.progress.duration) == ("COMPLETED", 1.0, 10)
    assert done.progress.end == "2027-01-15T08:00:10Z" and done.is_final and done.succeeded
    assert [s.name for s in done.steps] == [s.name for s in CATALOGUE["code-review"].steps]
    assert all(s.done and s.answer for s in done.steps)
    assert "## Review" in done.result and "```python\nx = 1\n```" in done.result


@pytest.mark.parametrize("slug", sorted(CATALOGUE))
def test_every_quick_command_completes(api, clock, slug):
    execution_id = start(api, slug, "def area(r):\n    return 3.14 * r * r")
    clock.now = 10.0
    done = poll(api, execution_id)
    assert done.succeeded and isinstance(done.result, str) and "area" in done.result
    assert 2 <= len(done.steps) <= 4 and [s.order for s in done.steps] == list(range(1, len(done.steps) + 1))


def test_answers_fit_the_command(api, clock):
    ids = {
        slug: start(api, slug, "def area(r):\n    return 3.14 * r * r") for slug in ("explain-code", "generate-tests")
    }
    clock.now = 10.0
    assert "## Explanation" in poll(api, ids["explain-code"]).result
    tests = poll(api, ids["generate-tests"]).result
    assert "import pytest" in tests and "def test_area_happy_path" in tests


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(CATALOGUE) + ["sim-unknown-status", "sim-failure"]),
    st.lists(st.floats(0, 12, allow_nan=False), min_size=1, max_size=8),
)
def test_progress_never_goes_back(slug, times):
    clock = Clock()
    api = authorized(Simulator(duration=10.0, clock=clock))
    execution_id = start(api, slug)
    rank = {"QUEUED": 0, "CREATED": 0, "RUNNING": 1, "COMPLETED": 2, "FAILURE": 2}
    seen = []
    for now in sorted(times):
        clock.now = now
        seen.append(poll(api, execution_id))
    for before, after in itertools.pairwise(seen):
        assert rank[before.status] <= rank[after.status]
        assert before.progress.percentage <= after.progress.percentage
        assert len(before.steps) <= len(after.steps)
        assert sum(s.done for s in before.steps) <= sum(s.done for s in after.steps)


# -- conversations ----------------------------------------------------------------------------


def test_new_conversation_gets_a_ulid(api):
    conversation = poll(api, start(api)).conversation_id
    assert len(conversation) == 26 and set(conversation) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_conversation_memory(api, clock):
    first = start(api, text="what is a monad?")
    conversation = poll(api, first).conversation_id
    second = start(api, "explain-code", "and a functor?", conversation)
    third = start(api, text="and an applicative?", conversation=conversation)
    other = start(api, text="unrelated")
    clock.now = 10.0
    assert "New conversation" in poll(api, first).result
    answer = poll(api, second)
    assert answer.conversation_id == conversation
    assert f"_Turn 2 of conversation `{conversation}`._" in answer.result and "1. “what is a monad?”" in answer.result
    assert "2. “and a functor?”" in poll(api, third).result
    assert "monad" not in poll(api, other).result


def test_unknown_conversation_id_is_accepted(api, clock):
    execution_id = start(api, "echo", "hi", conversation="01J000000000000000000CONVO")
    assert poll(api, execution_id).conversation_id == "01J000000000000000000CONVO"


def test_object_input_is_rendered_as_json(api, clock):
    echo = start(api, "echo", {"k": "v", "n": [1, 2]})
    review = start(api, "code-review", {"k": "v"})
    clock.now = 10.0
    assert poll(api, echo).result == json.dumps({"k": "v", "n": [1, 2]}, indent=2)
    assert '"k": "v"' in poll(api, review).result


def test_input_with_a_fence_stays_inside_the_code_block(api, clock):
    execution_id = start(api, text="```\nx\n```")
    clock.now = 10.0
    assert "````python\n```\nx\n```\n````" in poll(api, execution_id).result


# -- errors -----------------------------------------------------------------------------------


def test_unknown_slug(api):
    response = create(api, slug="no such")
    assert response.status_code == 404
    assert response.json() == {
        "code": "CODEBUDDY_1002_QUICK_COMMAND_NOT_FOUND",
        "message": "Quick command 'no such' not found",
    }


@pytest.mark.parametrize("body", [b"{bad", b"", b'{"other": 1}', b'{"input_data": [1]}', b'"text"'])
def test_bad_body_is_422(api, body):
    response = api.post(
        "/v1/quick-commands/create-execution/echo", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["message"]


def test_unknown_execution_and_route(api):
    assert api.get("/v1/quick-commands/callback/NOPE").status_code == 404
    missing = api.get("/v2/anything")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert api.delete("/v1/quick-commands/create-execution/echo").status_code == 404


def test_slug_is_url_decoded(api, clock):
    execution_id = start(api, slug="delay%2D5", text="decoded")
    clock.now = 1.0
    assert poll(api, execution_id).slug == "delay-5"


# -- fault slugs ------------------------------------------------------------------------------


def test_fault_slugs_are_all_accepted(api):
    assert "sim-failure" in FAULT_SLUGS and not set(FAULT_SLUGS) & set(quick_commands())
    for slug in FAULT_SLUGS:
        assert create(api, slug).status_code in (200, 429)


def test_fault_failure_stops_at_sixty_percent(api, clock):
    execution_id = start(api, "sim-failure")
    clock.now = 5.9
    assert poll(api, execution_id).status == "RUNNING"
    clock.now = 6.0
    failed = poll(api, execution_id)
    assert failed.status == "FAILURE" and failed.failed and failed.is_final
    assert failed.error == "Simulated failure: the LLM step raised an error" and failed.result is None
    assert failed.progress.percentage == 0.6 and failed.progress.duration == 6
    assert failed.progress.end == "2027-01-15T08:00:06Z"
    assert [(s.name, s.done) for s in failed.steps] == [("prepare", True), ("run", False)]


@pytest.mark.parametrize("retry_after, header", [(1.0, "1"), (2.5, "2.5"), (120.0, "120")])
def test_fault_rate_limit_alternates(clock, retry_after, header):
    api = authorized(Simulator(clock=clock, retry_after=retry_after))
    codes = []
    for _ in range(4):
        response = create(api, "sim-rate-limit")
        codes.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Retry-After"] == header
            assert response.json()["code"] == "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED"
    assert codes == [429, 200, 429, 200]


def test_fault_server_error_then_recovers_per_execution(api):
    for execution_id in (start(api, "sim-server-error"), start(api, "sim-server-error")):
        answers = [api.get(f"/v1/quick-commands/callback/{execution_id}") for _ in range(3)]
        assert [a.status_code for a in answers] == [503, 503, 200]
        assert answers[0].text == "<html><body><h1>503 Service Unavailable</h1></body></html>"
        assert Execution.parse(answers[2].json()).execution_id == execution_id


def test_fault_malformed(api, clock):
    execution_id = start(api, "sim-malformed")
    clock.now = 10.0
    response = api.get(f"/v1/quick-commands/callback/{execution_id}")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html"
    assert response.text == "<html>not json"


def test_fault_slow(api, clock):
    execution_id = start(api, "sim-slow")
    clock.now = 199.0
    assert poll(api, execution_id).status == "RUNNING"
    clock.now = 200.0
    assert poll(api, execution_id).status == "COMPLETED"


def test_fault_unknown_status(api, clock):
    execution_id = start(api, "sim-unknown-status")
    clock.now = 4.9
    queued = poll(api, execution_id)
    assert queued.status == "QUEUED" and queued.progress.percentage == 0.0 and not queued.is_final
    clock.now = 5.0
    assert poll(api, execution_id).status == "RUNNING"
    clock.now = 10.0
    assert poll(api, execution_id).status == "COMPLETED"


def test_fault_result_shapes(api, clock):
    fenced, obj = start(api, "sim-json-result"), start(api, "sim-object-result", {"k": 1})
    clock.now = 10.0
    text = poll(api, fenced).result
    assert text.startswith("```json\n") and text.endswith("\n```")
    assert json.loads(text[len("```json\n") : -len("\n```")])["ok"] is True
    result = poll(api, obj).result
    assert isinstance(result, dict) and result["input"] == {"k": 1}
    assert poll(api, obj).result_text().startswith("```json")


def test_delay_slug_lasts_exactly_its_milliseconds(api, clock):
    clock.now = 0.1  # 0.6 - 0.1 < 0.5 in floating point: the boundary must still count as done
    execution_id = start(api, "delay-500", "fast")
    clock.now = 0.599
    assert poll(api, execution_id).status == "RUNNING"
    clock.now = 0.6
    done = poll(api, execution_id)
    assert done.status == "COMPLETED" and done.result == "fast"


def test_long_delay_reports_its_duration(api, clock):
    execution_id = start(api, "delay-60000")
    clock.now = 30.0
    assert poll(api, execution_id).progress.percentage == 0.5
    clock.now = 60.0
    assert poll(api, execution_id).progress.duration == 60


# -- test hooks, transports, ids ----------------------------------------------------------------


def test_request_log_has_no_secrets(sim, api):
    create(api, conversation="01CONV")
    log = anonymous(sim).get("/_sim/requests").json()
    assert log == sim.requests
    assert log[0] == {"method": "POST", "path": "/stackspot-freemium/oidc/oauth/token", "query": {}}
    assert log[-1] == {
        "method": "POST",
        "path": "/v1/quick-commands/create-execution/code-review",
        "query": {"conversation_id": "01CONV"},
    }
    assert "demo-secret" not in str(log) and "sim-" not in str(log)


async def test_async_client_over_the_transport(sim, clock):
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        token = (await client.post("/r/oidc/oauth/token", data=CREDENTIALS)).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        execution_id = (await client.post("/v1/quick-commands/create-execution/echo", json={"input_data": "hi"})).json()
        clock.now = 10.0
        answer = Execution.parse((await client.get(f"/v1/quick-commands/callback/{execution_id}")).json())
    assert answer.succeeded and answer.result == "hi"


def test_ulids_sort_by_time_and_use_crockford_base32():
    ids = [ulid(1_000), ulid(2_000), ulid(2_000.001)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert len(ulid()) == 26


def test_repr_hides_the_secret():
    assert "demo-secret" not in repr(Simulator())


# -- real sockets -----------------------------------------------------------------------------


def test_real_socket_server(clock):
    with SimulatorServer(Simulator(clock=clock, duration=1.0)) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            token = client.post("/r/oidc/oauth/token", data=CREDENTIALS).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            execution_id = client.post("/v1/quick-commands/create-execution/echo", json={"input_data": "über"}).json()
            clock.now = 1.0
            answer = Execution.parse(client.get(f"/v1/quick-commands/callback/{execution_id}").json())
            assert answer.succeeded and answer.result == "über"
            assert client.get("/_sim/requests").json()[0]["path"] == "/r/oidc/oauth/token"


def test_real_socket_keep_alive_and_framing():
    with SimulatorServer(Simulator()) as server:
        connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
        try:
            sockets = set()
            for _ in range(3):  # three answers on one connection: lengths are right, nothing is closed
                connection.request("GET", "/_sim/requests")
                response = connection.getresponse()
                assert response.status == 200 and response.headers["Content-Length"]
                json.loads(response.read())
                sockets.add(id(connection.sock))
            assert len(sockets) == 1
            connection.request("POST", "/_sim/expire-tokens")
            response = connection.getresponse()
            assert response.status == 204 and response.read() == b""
            connection.putrequest("POST", "/r/oidc/oauth/token")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            connection.send(b"0\r\n\r\n")
            refused = connection.getresponse()
            assert refused.status == 411 and refused.getheader("Connection") == "close"
        finally:
            connection.close()


def test_stop_without_start_returns():
    SimulatorServer(Simulator()).stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "8.8.8.8"])
def test_server_refuses_non_loopback(host):
    with pytest.raises(ValueError, match="loopback"):
        SimulatorServer(Simulator(), host=host)


SERVE = textwrap.dedent("""
    from stackspot_tui.sim import Simulator, serve_forever
    serve_forever(Simulator(), "127.0.0.1", 0)
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_prints_one_line_and_exits_cleanly(signum):
    process = subprocess.Popen([sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("StackSpot simulator listening on http://127.0.0.1:")
        assert httpx.get(line.rsplit(" ", 1)[1].strip() + "/_sim/requests", trust_env=False).json() == []
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0 and out == "" and err == ""
