"""The simulator speaks the documented wire format, with fake time."""

from __future__ import annotations

import httpx
import pytest

from stackspot_tui.api.models import Execution
from stackspot_tui.sim import CATALOGUE, Simulator, ulid
from stackspot_tui.sim.server import SimulatorServer


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sim(clock):
    return Simulator(duration=10.0, clock=clock)


@pytest.fixture
def http(sim):
    client = httpx.Client(transport=sim.transport(), base_url="http://sim")
    token = client.post("/realm/oidc/oauth/token", data={
        "client_id": "demo-client", "client_secret": "demo-secret", "grant_type": "client_credentials"}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return client


def create(http, slug="code-review", text="x = 1", conversation=None):
    params = {"conversation_id": conversation} if conversation else {}
    return http.post(f"/v1/quick-commands/create-execution/{slug}", params=params, json={"input_data": text})


def poll(http, execution_id) -> Execution:
    response = http.get(f"/v1/quick-commands/callback/{execution_id}")
    assert response.status_code == 200
    return Execution.parse(response.json())


def test_token_answer_is_keycloak_like(sim):
    client = httpx.Client(transport=sim.transport(), base_url="http://sim")
    form = {"client_id": "demo-client", "client_secret": "demo-secret", "grant_type": "client_credentials"}
    body = client.post("/any-realm/oidc/oauth/token", data=form).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1199 and body["access_token"].startswith("sim-")
    bad = client.post("/r/oidc/oauth/token", data={**form, "client_secret": "nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert client.post("/r/oidc/oauth/token", data={**form, "grant_type": "password"}).status_code == 400


def test_api_needs_a_valid_unexpired_token(sim, http, clock):
    assert httpx.Client(transport=sim.transport(), base_url="http://sim").post(
        "/v1/quick-commands/create-execution/echo", json={"input_data": "x"}).status_code == 401
    assert create(http).status_code == 200
    clock.now += 1200
    assert create(http).status_code == 401


def test_expire_tokens_endpoint(sim, http):
    http.post("/_sim/expire-tokens")
    assert create(http).status_code == 401


def test_progress_created_running_completed_with_steps(http, clock):
    execution_id = create(http).json()
    assert len(execution_id) == 26
    first = poll(http, execution_id)
    assert first.status == "CREATED" and first.progress.percentage == 0 and first.result is None
    clock.now = 5.0
    middle = poll(http, execution_id)
    assert middle.status == "RUNNING" and middle.progress.percentage == 0.5
    assert [s.done for s in middle.steps] == [True, False]
    assert middle.progress.end is None and middle.progress.duration is None
    clock.now = 10.0
    done = poll(http, execution_id)
    assert done.status == "COMPLETED" and done.progress.percentage == 1.0 and done.progress.duration == 10
    assert [s.name for s in done.steps] == [s.name for s in CATALOGUE["code-review"].steps]
    assert all(s.done for s in done.steps) and done.steps[0].sources[0].url.startswith("https://docs.stackspot.com")
    assert "## Review" in done.result and "x = 1" in done.result


def test_conversation_memory(http, clock):
    first = create(http, text="what is a monad?").json()
    clock.now += 10
    conversation = poll(http, first).conversation_id
    second = create(http, text="and a functor?", conversation=conversation).json()
    clock.now += 10
    answer = poll(http, second)
    assert answer.conversation_id == conversation
    assert "Turn 2" in answer.result and "what is a monad?" in answer.result


def test_dict_input_and_echo(http, clock):
    execution_id = create(http, slug="echo", text={"k": "v"}).json()
    clock.now += 10
    assert '"k": "v"' in poll(http, execution_id).result


def test_unknown_slug_and_bad_body(http):
    missing = create(http, slug="nope")
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    assert http.post("/v1/quick-commands/create-execution/echo", content=b"{bad").status_code == 422
    assert http.post("/v1/quick-commands/create-execution/echo", json={"other": 1}).status_code == 422
    assert http.get("/v1/quick-commands/callback/NOPE").status_code == 404


def test_fault_failure(http, clock):
    execution_id = create(http, slug="sim-failure").json()
    clock.now += 10
    failed = poll(http, execution_id)
    assert failed.status == "FAILURE" and failed.error.startswith("Simulated failure") and failed.result is None
    assert failed.progress.percentage == 0.6


def test_fault_rate_limit_alternates(http):
    limited = create(http, slug="sim-rate-limit")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["code"] == "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED"
    assert create(http, slug="sim-rate-limit").status_code == 200


def test_fault_server_error_then_recovers(http):
    execution_id = create(http, slug="sim-server-error").json()
    codes = [http.get(f"/v1/quick-commands/callback/{execution_id}").status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_fault_malformed(http):
    execution_id = create(http, slug="sim-malformed").json()
    response = http.get(f"/v1/quick-commands/callback/{execution_id}")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html"


def test_unknown_status_and_result_shapes(http, clock):
    queued = create(http, slug="sim-unknown-status").json()
    obj = create(http, slug="sim-object-result").json()
    fenced = create(http, slug="sim-json-result").json()
    assert poll(http, queued).status == "QUEUED"
    clock.now += 10
    assert isinstance(poll(http, obj).result, dict)
    assert poll(http, fenced).result.startswith("```json")


def test_delay_slug_sets_the_duration(http, clock):
    execution_id = create(http, slug="delay-500", text="fast").json()
    clock.now += 0.49
    assert poll(http, execution_id).status == "RUNNING"
    clock.now += 0.02
    done = poll(http, execution_id)
    assert done.status == "COMPLETED" and done.result == "fast"


def test_request_log_has_no_secrets(sim, http):
    create(http, conversation="01CONV")
    log = http.get("/_sim/requests").json()
    assert log[-1] == {"method": "POST", "path": "/v1/quick-commands/create-execution/code-review",
                       "query": {"conversation_id": "01CONV"}}
    assert "demo-secret" not in str(log) and "sim-" not in str(log)


def test_ulids_sort_by_time():
    assert ulid(1_000) < ulid(2_000) and len(ulid()) == 26


def test_real_socket_server():
    with SimulatorServer(Simulator(duration=0.01)) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url) as client:
            token = client.post("/r/oidc/oauth/token", data={
                "client_id": "demo-client", "client_secret": "demo-secret", "grant_type": "client_credentials"})
            assert token.status_code == 200
            assert client.get("/_sim/requests").json()[0]["path"] == "/r/oidc/oauth/token"


def test_server_refuses_non_loopback():
    with pytest.raises(ValueError, match="loopback"):
        SimulatorServer(Simulator(), host="0.0.0.0")
