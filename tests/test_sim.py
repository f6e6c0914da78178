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
from conftest import examples
from helpers import sigint_as_in_a_shell
from hypothesis import given, settings
from hypothesis import strategies as st

from stackspot_tui.api.models import Execution
from stackspot_tui.sim import (
    CATALOGUE,
    FAULT_SLUGS,
    FAULTS,
    PROGRESS_MODES,
    Simulator,
    SimulatorServer,
    quick_commands,
    ulid,
)

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
    assert first.progress.start == "2027-01-15T08:00:00.000000+00:00" and first.progress.end is None

    clock.now = 0.5  # the first step (a web request) runs
    started = poll(api, execution_id)
    assert (started.status, started.progress.percentage) == ("RUNNING", 0.0)
    assert [(s.name, s.order, s.done) for s in started.steps] == [("fetch-guidelines", 0, False)]

    clock.now = 5.0  # two of four steps done; the long LLM step runs
    middle = poll(api, execution_id)
    assert (middle.status, middle.progress.percentage) == ("RUNNING", 0.5)
    assert [(s.name, s.order, s.type, s.done) for s in middle.steps] == [
        ("fetch-guidelines", 0, "API", True),
        ("search-knowledge", 1, "LLM", True),
        ("analyze", 2, "LLM", False),
    ]
    web = middle.steps[0].web
    assert web is not None and web.status_code == 200 and json.loads(web.data) == {"rules": 12, "style": "pep8"}
    raw_web = middle.raw["steps"][0]["step_result"]
    assert set(raw_web) == {"status_code", "headers", "data", "json_data"} and raw_web["json_data"]["rules"] == 12
    raw_source = middle.raw["steps"][1]["step_result"]["sources"][0]
    assert set(raw_source) == {"type", "name", "slug", "document_type", "document_score", "document_id"}
    assert middle.steps[1].sources[0].detail() == "Code review guidelines (KNOWLEDGE_SOURCE, score 0.83)"
    assert middle.progress.end is None and middle.progress.duration is None and middle.result is None

    clock.now = 8.49  # the LLM step is still running: the percentage stalls
    assert poll(api, execution_id).progress.percentage == 0.5
    clock.now = 8.5
    assert poll(api, execution_id).progress.percentage == 0.75
    clock.now = 9.999
    assert poll(api, execution_id).progress.percentage == 0.75  # 1.0 is kept for COMPLETED

    clock.now = 10.0
    done = poll(api, execution_id)
    assert (done.status, done.progress.percentage, done.progress.duration) == ("COMPLETED", 1.0, 10)
    assert done.progress.end == "2027-01-15T08:00:10.000000+00:00" and done.is_final and done.succeeded
    assert [s.name for s in done.steps] == [s.name for s in CATALOGUE["code-review"].steps]
    assert all(s.done and (s.answer or s.web) for s in done.steps)
    assert "## Review" in done.result and "```python\nx = 1\n```" in done.result


@pytest.mark.parametrize("slug", sorted(CATALOGUE))
def test_every_quick_command_completes(api, clock, slug):
    execution_id = start(api, slug, "def area(r):\n    return 3.14 * r * r")
    clock.now = 10.0
    done = poll(api, execution_id)
    assert done.succeeded and isinstance(done.result, str) and "area" in done.result
    assert 2 <= len(done.steps) <= 4 and [s.order for s in done.steps] == list(range(len(done.steps)))


def test_answers_fit_the_command(api, clock):
    ids = {
        slug: start(api, slug, "def area(r):\n    return 3.14 * r * r") for slug in ("explain-code", "generate-tests")
    }
    clock.now = 10.0
    assert "## Explanation" in poll(api, ids["explain-code"]).result
    tests = poll(api, ids["generate-tests"]).result
    assert "import pytest" in tests and "def test_area_happy_path" in tests


@settings(max_examples=examples(60), deadline=None)
@given(
    st.sampled_from(sorted(CATALOGUE) + [s for s in FAULTS if s.startswith("sim-failure")] + ["sim-unknown-status"]),
    st.sampled_from(PROGRESS_MODES[:3]),
    st.lists(st.floats(0, 12, allow_nan=False), min_size=1, max_size=8),
)
def test_progress_never_goes_back(slug, mode, times):
    clock = Clock()
    api = authorized(Simulator(duration=10.0, progress=mode, clock=clock))
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
        "type": "NotFound",
        "code": "CODEBUDDY_1002_QUICK_COMMAND_NOT_FOUND",
        "details": "Quick command 'no such' not found",
    }


@pytest.mark.parametrize(
    "body, loc",
    [
        (b"{bad", ["body"]),
        (b"", ["body", "input_data"]),
        (b'{"other": 1}', ["body", "input_data"]),
        (b'{"input_data": [1]}', ["body", "input_data"]),
        (b'"text"', ["body", "input_data"]),
    ],
)
def test_bad_body_is_a_fastapi_422(api, body, loc):
    response = api.post(
        "/v1/quick-commands/create-execution/echo", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc and problem["msg"] and problem["type"]


def test_unknown_execution_and_route(api):
    missing_execution = api.get("/v1/quick-commands/callback/NOPE")
    assert missing_execution.status_code == 404 and missing_execution.json()["type"] == "NotFound"
    missing = api.get("/v2/anything")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    assert api.delete("/v1/quick-commands/create-execution/echo").status_code == 404


def test_slug_is_url_decoded(api, clock):
    execution_id = start(api, slug="delay%2D5", text="decoded")
    clock.now = 1.0
    assert poll(api, execution_id).slug == "delay-5"


# -- fault slugs ------------------------------------------------------------------------------


REFUSED = {
    "sim-quota": 429,
    "sim-forbidden": 403,
    "sim-invalid": 422,
    "sim-not-found-bare": 404,
    "sim-not-found-detail": 404,
}


def test_fault_slugs_answer_as_documented(api):
    assert "sim-failure" in FAULT_SLUGS and not set(FAULT_SLUGS) & set(quick_commands())
    for slug in FAULT_SLUGS:
        expected = REFUSED.get(slug, 429 if slug.startswith("sim-rate-limit") else 200)
        assert create(api, slug).status_code == expected, slug


def test_every_fault_slug_is_listed_in_the_readme_and_the_module_docstring():
    from pathlib import Path

    from stackspot_tui.sim import quick

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for slug in FAULTS:
        assert f"`{slug}`" in quick.__doc__, slug
        assert f"`{slug}`" in readme, slug
    for mode in PROGRESS_MODES:
        assert f"`{mode}`" in readme and f"`{mode}`" in quick.__doc__


def test_fault_failure_stops_at_sixty_percent(api, clock):
    execution_id = start(api, "sim-failure")
    clock.now = 5.9
    assert poll(api, execution_id).status == "RUNNING"
    clock.now = 6.0
    failed = poll(api, execution_id)
    assert failed.status == "FAILURE" and failed.failed and failed.is_final
    assert failed.error == "Simulated failure: the LLM step raised an error" and failed.result is None
    assert failed.progress.percentage == 0.5 and failed.progress.duration == 6
    assert failed.progress.end == "2027-01-15T08:00:06.000000+00:00"
    assert [(s.name, s.done) for s in failed.steps] == [("prepare", True), ("fetch-context", True), ("generate", False)]


@pytest.mark.parametrize(
    "slug, reason",
    [
        ("sim-failure", "Simulated failure: the LLM step raised an error"),
        ("sim-failure-message", "Simulated failure: the LLM step raised an error"),
        ("sim-failure-details", "Simulated failure: the LLM step raised an error"),
        ("sim-failure-progress", "Simulated failure: the LLM step raised an error"),
        ("sim-failure-step", "step 3 (generate): Simulated failure: the LLM step raised an error"),
        ("sim-failure-web", "step 2 (fetch-context): HTTP 502 · Bad Gateway: the ticket service did not answer"),
        (
            "sim-failure-silent",
            "the execution failed on StackSpot without an explanation; it stopped at step 3 (generate)",
        ),
    ],
)
def test_failure_explanations_sit_where_the_document_says(api, clock, slug, reason):
    execution_id = start(api, slug)
    clock.now = 10.0
    failed = poll(api, execution_id)
    assert failed.status == "FAILURE" and failed.failure_reason() == reason
    raw = failed.raw
    where = {
        "sim-failure": lambda: "error" in raw,
        "sim-failure-message": lambda: "message" in raw,
        "sim-failure-details": lambda: "details" in raw,
        "sim-failure-progress": lambda: "error" in raw["progress"],
        "sim-failure-step": lambda: raw["steps"][-1]["step_result"]["error"] is not None,
        "sim-failure-web": lambda: raw["steps"][-1]["step_result"]["status_code"] == 502,
        "sim-failure-silent": lambda: not {"error", "message", "details"} & (set(raw) | set(raw["progress"])),
    }
    assert where[slug]()


def test_fault_web_steps(api, clock):
    execution_id = start(api, "sim-web-steps")
    clock.now = 10.0
    done = poll(api, execution_id)
    assert done.succeeded
    webs = [s.web for s in done.steps if s.web is not None]
    assert [w.status_code for w in webs] == [200, 200, 404, 201, 200]
    assert webs[1].data.startswith("# README") and webs[3].data == '{"id": "a1", "tags": ["x", "y"]}'
    assert len(webs[4].data) == 20_000 and len(webs[4].preview()) <= 80
    assert done.raw["steps"][3]["step_result"]["data"] is None  # json_data only


def test_fault_stuck_in_created(api, clock):
    execution_id = start(api, "sim-stuck-created")
    for now in (1.0, 2.0, 29.9):  # 3 × the 10 s duration
        clock.now = now
        stuck = poll(api, execution_id)
        assert stuck.status == "CREATED" and stuck.steps == () and stuck.progress.percentage == 0.0
    clock.now = 35.0
    assert poll(api, execution_id).status == "RUNNING"
    clock.now = 40.0
    done = poll(api, execution_id)
    assert done.succeeded and done.progress.duration == 40


def test_fault_stuck_in_created_is_seen_by_its_first_three_polls_however_late(api, clock):
    execution_id = start(api, "sim-stuck-created")
    for now in (100.0, 200.0, 300.0):  # long past 3 × the duration
        clock.now = now
        assert poll(api, execution_id).status == "CREATED"
    clock.now = 305.0
    assert poll(api, execution_id).status == "RUNNING"
    clock.now = 310.0
    assert poll(api, execution_id).succeeded


def test_fault_html_during_polling_then_json(api):
    for execution_id in (start(api, "sim-html-poll"), start(api, "sim-html-poll")):
        answers = [api.get(f"/v1/quick-commands/callback/{execution_id}") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert answers[0].headers["content-type"].startswith("text/html") and answers[0].text.startswith("<html>")
        assert Execution.parse(answers[2].json()).execution_id == execution_id


def test_fault_rate_limits_and_quota_have_no_retry_after(api):
    minute = [create(api, "sim-rate-limit-minute") for _ in range(2)]
    assert [r.status_code for r in minute] == [429, 200] and "Retry-After" not in minute[0].headers
    assert minute[0].json() == {
        "type": "TooManyRequests",
        "code": "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED",
        "details": "Too many requests. Your limit is 20 requests in the last 1 minutes",
    }
    quota = [create(api, "sim-quota") for _ in range(3)]
    assert {r.status_code for r in quota} == {429} and "Retry-After" not in quota[0].headers
    assert quota[0].json()["details"] == "Too many requests. Your limit is 50 requests in the last 1440 minutes"


def test_fault_error_bodies(api):
    assert create(api, "sim-forbidden").json()["code"] == "CODEBUDDY_1003_QUICK_COMMAND_FORBIDDEN"
    assert [p["loc"] for p in create(api, "sim-invalid").json()["detail"]] == [
        ["body", "input_data"],
        ["query", "conversation_id"],
    ]
    assert create(api, "sim-not-found-bare").json() == "Not Found"
    assert create(api, "sim-not-found-detail").json() == {"detail": "Not Found"}


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
            assert response.json()["details"]
    assert codes == [429, 200, 429, 200]


def test_fault_server_error_then_recovers_per_execution(api):
    for execution_id in (start(api, "sim-server-error"), start(api, "sim-server-error")):
        answers = [api.get(f"/v1/quick-commands/callback/{execution_id}") for _ in range(3)]
        assert [a.status_code for a in answers] == [503, 503, 200]
        assert "503 Service Unavailable" in answers[0].text and answers[0].text.startswith("<html>")
        assert Execution.parse(answers[2].json()).execution_id == execution_id


def test_fault_malformed(api, clock):
    execution_id = start(api, "sim-malformed")
    clock.now = 10.0
    for _ in range(4):
        response = api.get(f"/v1/quick-commands/callback/{execution_id}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert response.text.startswith("<html>")


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
    assert queued.status == "QUEUED" and not queued.is_final
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
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_in_a_shell,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("StackSpot simulator listening on http://127.0.0.1:")
        assert httpx.get(line.rsplit(" ", 1)[1].strip() + "/_sim/requests", trust_env=False).json() == []
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0 and out == "" and err == ""


# -- progress modes ---------------------------------------------------------------------------

# delay-<ms> steps: receive-input 3-6 %, search-knowledge 6-15 %, generate 15-85 %, format 85-100 %
MODE_PERCENTAGES = {
    "steps": [0.0, 0.0, 0.25, 0.5, 0.5, 0.5, 0.75, 0.75, 1.0],
    "linear": [0.0, 0.04, 0.1, 0.2, 0.5, 0.84, 0.9, 0.99, 1.0],
    "stalled": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    "none": [None] * 9,
}
MODE_TIMES = [0.0, 0.4, 1.0, 2.0, 5.0, 8.4, 9.0, 9.999, 10.0]


@pytest.mark.parametrize("mode", PROGRESS_MODES)
def test_progress_modes_by_slug(api, clock, mode):
    execution_id = start(api, f"delay-10000-{mode}", "hi")
    seen = []
    for now in MODE_TIMES:
        clock.now = now
        seen.append(poll(api, execution_id))
    assert [e.progress.percentage for e in seen] == MODE_PERCENTAGES[mode]
    assert [e.status for e in seen] == ["CREATED"] + ["RUNNING"] * 7 + ["COMPLETED"]
    # whatever the percentage does, the steps grow and finish the same way
    assert [sum(s.done for s in e.steps) for e in seen] == [0, 0, 1, 2, 2, 2, 3, 3, 4]
    if mode == "none":
        assert all("execution_percentage" not in e.raw["progress"] for e in seen)
    assert seen[-1].result == "hi"


@pytest.mark.parametrize("mode", PROGRESS_MODES)
def test_progress_mode_of_the_simulator(clock, mode):
    api = authorized(Simulator(duration=10.0, progress=mode, clock=clock, wall_clock=lambda: WALL))
    ids = [start(api, "echo"), start(api, "progress-linear"), start(api, "delay-10000-stalled")]
    clock.now = 5.0
    echo, linear, stalled = (poll(api, i) for i in ids)
    assert echo.progress.percentage == {"steps": 0.5, "linear": 0.5, "stalled": 0.0, "none": None}[mode]
    assert (linear.progress.percentage, stalled.progress.percentage) == (0.5, 0.0)  # the slug's own mode wins


def test_unknown_mode_or_object_shape_is_refused():
    with pytest.raises(ValueError, match="progress mode"):
        Simulator(progress="exponential")
    with pytest.raises(ValueError, match="object input"):
        Simulator(object_input="xml")


@pytest.mark.parametrize(
    "shape, body, status",
    [
        ("any", {"a": 1}, 200),
        ("any", {"json": {"a": 1}}, 200),
        ("plain", {"a": 1}, 200),
        ("json", {"json": {"a": 1}}, 200),
        ("json", {"a": 1}, 422),
        ("json", "text is always fine", 200),
    ],
)
def test_object_input_shapes(clock, shape, body, status):
    api = authorized(Simulator(duration=1.0, object_input=shape, clock=clock))
    response = create(api, "echo", body)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "input_data", "json"]
    else:
        clock.now = 1.0
        result = poll(api, response.json()).result
        assert result == (body if isinstance(body, str) else json.dumps({"a": 1}, indent=2))


def test_execution_facts_for_benchmarks(sim, api, clock):
    execution_id = start(api, "delay-2500-linear")
    for now in (0.5, 1.25):
        clock.now = now
        poll(api, execution_id)
    facts = anonymous(sim).get(f"/_sim/executions/{execution_id}").json()
    assert facts == {
        "created": WALL,
        "completes_at": WALL + 2.5,
        "polls": 2,
        "poll_times": [0.5, 1.25],
        "mode": "linear",
    }
    assert anonymous(sim).get("/_sim/executions/NOPE").status_code == 404
