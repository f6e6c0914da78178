"""Every HTTP path of the StackSpot client, with respx."""

from __future__ import annotations

import json
from datetime import UTC

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from stackspot_tui.api import (
    AuthError,
    BadRequestError,
    Execution,
    ExecutionTimeout,
    ForbiddenError,
    InvalidSlugError,
    NetworkError,
    NotFoundError,
    PollPolicy,
    ProtocolError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    StackSpotClient,
    slug_problem,
)
from stackspot_tui.api.errors import ErrorBody, QuotaExceededError, limit_window
from stackspot_tui.api.policy import parse_retry_after

API = "https://api.test"
TOKEN_URL = "https://idm.test/acme/oidc/oauth/token"
CREATE = f"{API}/v1/quick-commands/create-execution/code-review"
EXEC_ID = "01J8Z3K5Q1X9G7V2M4N6P8R0ST"
CALLBACK = f"{API}/v1/quick-commands/callback/{EXEC_ID}"


def token_answer(value: str = "tok-1", expires_in: int = 1199) -> httpx.Response:
    return httpx.Response(200, json={"access_token": value, "expires_in": expires_in, "token_type": "Bearer"})


def callback(status: str, pct: float | None = None, result=None, steps=None, **extra) -> httpx.Response:
    body = {
        "execution_id": EXEC_ID,
        "quick_command_slug": "code-review",
        "conversation_id": "01CONV",
        "progress": {"status": status, "execution_percentage": pct, "start": "2026-11-20T12:00:00Z"},
        "steps": steps or [],
        "result": result,
        **extra,
    }
    return httpx.Response(200, json=body)


@pytest.fixture
def client(fake_time):
    c = StackSpotClient(
        client_id="cid",
        client_secret="s3cret-value",
        token_url=TOKEN_URL,
        api_url=API,
        retry=RetryPolicy(max_retries=3),
        poll=PollPolicy(initial=0.5, max_interval=5.0),
        execution_timeout=120,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    yield c


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


# -- auth -------------------------------------------------------------------------------


async def test_token_fetched_once_and_sent_as_bearer(client, mock):
    token = mock.post(TOKEN_URL).mock(return_value=token_answer("abc"))
    create = mock.post(CREATE).mock(return_value=httpx.Response(200, json=EXEC_ID))
    assert await client.create_execution("code-review", "hi") == EXEC_ID
    assert await client.create_execution("code-review", "again") == EXEC_ID
    assert token.call_count == 1
    form = dict(x.split("=") for x in token.calls[0].request.content.decode().split("&"))
    assert form == {"client_id": "cid", "client_secret": "s3cret-value", "grant_type": "client_credentials"}
    assert create.calls[1].request.headers["Authorization"] == "Bearer abc"


async def test_token_refreshed_shortly_before_expiry(client, mock, fake_time):
    token = mock.post(TOKEN_URL).mock(side_effect=[token_answer("t1", 100), token_answer("t2", 100)])
    create = mock.post(CREATE).mock(return_value=httpx.Response(200, json=EXEC_ID))
    await client.create_execution("code-review", "a")
    fake_time.now += 95  # inside the 10% margin before expiry
    await client.create_execution("code-review", "b")
    assert token.call_count == 2
    assert create.calls[1].request.headers["Authorization"] == "Bearer t2"


async def test_token_kept_while_fresh(client, mock, fake_time):
    token = mock.post(TOKEN_URL).mock(side_effect=[token_answer("t1", 100), token_answer("t2", 100)])
    mock.post(CREATE).mock(return_value=httpx.Response(200, json=EXEC_ID))
    await client.create_execution("code-review", "a")
    fake_time.now += 50
    await client.create_execution("code-review", "b")
    assert token.call_count == 1


async def test_401_triggers_one_refresh_and_retry(client, mock):
    mock.post(TOKEN_URL).mock(side_effect=[token_answer("old"), token_answer("new")])
    create = mock.post(CREATE).mock(
        side_effect=[httpx.Response(401, json={"message": "expired"}), httpx.Response(200, json=EXEC_ID)]
    )
    assert await client.create_execution("code-review", "x") == EXEC_ID
    assert [c.request.headers["Authorization"] for c in create.calls] == ["Bearer old", "Bearer new"]


async def test_persistent_401_is_an_auth_error_after_one_refresh(client, mock):
    token = mock.post(TOKEN_URL).mock(side_effect=[token_answer("a"), token_answer("b")])
    create = mock.post(CREATE).mock(return_value=httpx.Response(401, json={"message": "nope"}))
    with pytest.raises(AuthError, match="HTTP 401"):
        await client.create_execution("code-review", "x")
    assert token.call_count == 2
    assert create.call_count == 2


@pytest.mark.parametrize("status", [400, 401])
async def test_wrong_credentials_name_the_token_url(client, mock, status):
    mock.post(TOKEN_URL).mock(
        return_value=httpx.Response(status, json={"error": "invalid_client", "error_description": "Invalid client"})
    )
    with pytest.raises(AuthError) as err:
        await client.create_execution("code-review", "x")
    message = str(err.value)
    assert TOKEN_URL in message and "Invalid client" in message and "STACKSPOT_REALM" in message
    assert "s3cret-value" not in message


async def test_token_endpoint_non_json(client, mock):
    mock.post(TOKEN_URL).mock(return_value=httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(ProtocolError, match="did not answer JSON"):
        await client.create_execution("code-review", "x")


async def test_token_endpoint_5xx_is_retried(client, mock):
    mock.post(TOKEN_URL).mock(side_effect=[httpx.Response(503), token_answer()])
    mock.post(CREATE).mock(return_value=httpx.Response(200, json=EXEC_ID))
    assert await client.create_execution("code-review", "x") == EXEC_ID


def test_auth_repr_hides_the_secret(client):
    assert "s3cret-value" not in repr(client.auth)


# -- create-execution ----------------------------------------------------------------------


async def test_create_without_conversation_sends_no_param_and_text_input(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    create = mock.post(CREATE).mock(return_value=httpx.Response(200, json=EXEC_ID))
    await client.create_execution("code-review", "review this")
    request = create.calls[0].request
    assert "conversation_id" not in request.url.params
    assert json.loads(request.content) == {"input_data": "review this"}


async def test_create_with_conversation_and_dict_input(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    create = mock.post(CREATE).mock(return_value=httpx.Response(200, json=EXEC_ID))
    await client.create_execution("code-review", {"lang": "py", "code": "x=1"}, conversation_id="01CONV")
    request = create.calls[0].request
    assert request.url.params["conversation_id"] == "01CONV"
    assert json.loads(request.content) == {"input_data": {"lang": "py", "code": "x=1"}}


@pytest.mark.parametrize(
    "slug, words",
    [
        ("../../admin?x=1", "'.' '/' '=' '?' not allowed"),
        ("", "empty"),
        ("a" * 86, "86 characters long"),
        ("revisão", "'ã' not allowed"),
        ("two words", "' ' not allowed"),
    ],
)
async def test_a_slug_stackspot_refuses_is_never_sent(client, mock, slug, words):
    route = mock.route().mock(return_value=httpx.Response(200, json=EXEC_ID))
    with pytest.raises(InvalidSlugError) as err:
        await client.create_execution(slug, "hi")
    assert words in str(err.value) and route.call_count == 0


@pytest.mark.parametrize("slug", ["a", "A-Z_09", "x" * 85, "code-review"])
def test_slugs_stackspot_accepts(slug):
    assert slug_problem(slug) is None


@given(st.text(max_size=100))
def test_slug_check_matches_the_documented_pattern(slug):
    import re

    assert (slug_problem(slug) is None) == bool(re.fullmatch(r"[A-Za-z0-9_-]{1,85}", slug))


async def test_object_input_shape_is_a_setting(mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(return_value=httpx.Response(200, json=EXEC_ID))
    for shape, sent in (("plain", {"a": 1}), ("json", {"json": {"a": 1}})):
        client = StackSpotClient(
            client_id="c",
            client_secret="s",
            token_url=TOKEN_URL,
            api_url=API,
            object_input=shape,
            sleep=fake_time.sleep,
        )
        await client.create_execution("code-review", {"a": 1})
        await client.create_execution("code-review", "text stays text")
        assert json.loads(route.calls[-2].request.content) == {"input_data": sent}
        assert json.loads(route.calls[-1].request.content) == {"input_data": "text stays text"}


@pytest.mark.parametrize(
    "status, error, words",
    [
        (403, ForbiddenError, "no access"),
        (404, NotFoundError, "not found"),
        (422, BadRequestError, "refused"),
    ],
)
async def test_create_client_errors_are_typed(client, mock, status, error, words):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(return_value=httpx.Response(status, json={"message": "server says so"}))
    with pytest.raises(error) as err:
        await client.create_execution("code-review", "x")
    assert words in str(err.value) and "server says so" in str(err.value) and "code-review" in str(err.value)
    assert route.call_count == 1  # 4xx is not retried


async def test_create_429_waits_retry_after_then_succeeds(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.post(CREATE).mock(
        side_effect=[
            httpx.Response(
                429, headers={"Retry-After": "7"}, json={"code": "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED"}
            ),
            httpx.Response(200, json=EXEC_ID),
        ]
    )
    notices = []
    assert await client.create_execution("code-review", "x", on_retry=notices.append) == EXEC_ID
    assert fake_time.sleeps == [7.0]
    assert notices[0].reason == "rate_limited" and notices[0].delay == 7.0


async def test_429_beyond_max_retry_after_fails_fast(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.post(CREATE).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitedError, match="retry after 3600 s") as err:
        await client.create_execution("code-review", "x")
    assert err.value.retry_after == 3600
    assert fake_time.sleeps == []


async def test_429_without_header_uses_backoff_and_gives_up(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(return_value=httpx.Response(429, json={"message": "slow down"}))
    with pytest.raises(RateLimitedError, match="slow down"):
        await client.create_execution("code-review", "x")
    assert route.call_count == 4  # 1 + max_retries
    assert len(fake_time.sleeps) == 3


async def test_create_503_retried_but_500_not(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(side_effect=[httpx.Response(503), httpx.Response(200, json=EXEC_ID)])
    assert await client.create_execution("code-review", "x") == EXEC_ID
    route.side_effect = [httpx.Response(500, text="boom")]
    with pytest.raises(ServerError, match="HTTP 500"):
        await client.create_execution("code-review", "x")


async def test_create_read_timeout_not_repeated(client, mock):
    # The server may have started the execution: repeating would run it twice.
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(NetworkError, match="did not answer in time"):
        await client.create_execution("code-review", "x")
    assert route.call_count == 1


async def test_connection_refused_retried_then_clear_error(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(NetworkError, match=r"cannot reach StackSpot at https://idm\.test: connection refused"):
        await client.create_execution("code-review", "x")
    assert len(fake_time.sleeps) == 3
    assert all(0 < s <= 8.0 for s in fake_time.sleeps)


async def test_dns_failure_message(client, mock):
    mock.post(TOKEN_URL).mock(side_effect=httpx.ConnectError("[Errno -2] Name or service not known"))
    with pytest.raises(NetworkError, match="DNS"):
        await client.create_execution("code-review", "x")


@pytest.mark.parametrize("body", ["<html>gateway</html>", "", "{not json"])
async def test_create_malformed_answer(client, mock, body):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.post(CREATE).mock(return_value=httpx.Response(200, text=body))
    with pytest.raises(ProtocolError):
        await client.create_execution("code-review", "x")


async def test_create_answer_without_id(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.post(CREATE).mock(return_value=httpx.Response(200, content=b"null"))
    with pytest.raises(ProtocolError, match="without an execution id"):
        await client.create_execution("code-review", "x")


async def test_create_accepts_object_with_execution_id(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.post(CREATE).mock(return_value=httpx.Response(200, json={"execution_id": EXEC_ID}))
    assert await client.create_execution("code-review", "x") == EXEC_ID


# -- callback and watch ----------------------------------------------------------------------


async def test_watch_to_completed_yields_every_answer(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    step_pending = [{"step_name": "analyze", "execution_order": 1, "type": "LLM", "step_result": None}]
    step_done = [
        {
            "step_name": "analyze",
            "execution_order": 1,
            "type": "LLM",
            "step_result": {"answer": "ok", "sources": [{"title": "Docs", "url": "https://d"}]},
        }
    ]
    route = mock.get(CALLBACK).mock(
        side_effect=[
            callback("CREATED", 0.0),
            callback("RUNNING", 0.3, steps=step_pending),
            callback("RUNNING", 0.3, steps=step_pending),  # unchanged: not yielded
            callback("RUNNING", 0.8, steps=step_done),
            callback("COMPLETED", 1.0, result="## Review\nfine", steps=step_done),
        ]
    )
    snapshots = [e async for e in client.watch(EXEC_ID, created_at=fake_time.now)]
    assert [s.status for s in snapshots] == ["CREATED", "RUNNING", "RUNNING", "RUNNING", "COMPLETED"]
    assert not snapshots[2].differs_from(snapshots[1]) and snapshots[3].differs_from(snapshots[2])
    assert snapshots[-1].result_text() == "## Review\nfine"
    assert snapshots[-1].steps[0].sources[0].name == "Docs"
    assert route.call_count == 5
    assert fake_time.sleeps[:3] == [0.5, 0.5, 1.0]  # within half a second, then on the 1 s grid


async def test_reattach_polls_at_once_then_on_the_servers_grid(mock, fake_time):
    """Without a creation time, the grid is anchored on `progress.start` (the server's clock)."""
    wall = 1_800_000_000.25  # the execution started 10.25 s before the first poll
    client = StackSpotClient(
        client_id="cid",
        client_secret="s",
        token_url=TOKEN_URL,
        api_url=API,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        wall_clock=lambda: wall + (fake_time.now - 1000.0),
    )
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    start = "2027-01-15T08:00:00+00:00"  # 1_800_000_000 - 10
    mock.get(CALLBACK).mock(
        side_effect=[
            callback("RUNNING", None, **{"progress": {"status": "RUNNING", "start": start}}),
            callback("RUNNING", None, **{"progress": {"status": "RUNNING", "start": start}}),
            callback("COMPLETED", 1.0, result="r"),
        ]
    )
    [e async for e in client.watch(EXEC_ID)]
    assert fake_time.sleeps == [0.0, pytest.approx(0.75), pytest.approx(1.0)]  # at 10.25, then 11, 12 s


async def test_watch_stops_on_failure_with_server_message(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.get(CALLBACK).mock(
        side_effect=[callback("RUNNING", 0.5), callback("FAILURE", 0.6, error="LLM step crashed")]
    )
    snapshots = [e async for e in client.watch(EXEC_ID)]
    assert snapshots[-1].failed and snapshots[-1].error == "LLM step crashed"
    assert route.call_count == 2  # no polling after FAILURE


async def test_watch_treats_error_status_as_final(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.get(CALLBACK).mock(side_effect=[callback("ERROR", None)])
    snapshots = [e async for e in client.watch(EXEC_ID)]
    assert snapshots[-1].is_final and snapshots[-1].failed


async def test_unexpected_status_is_shown_and_polling_continues(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.get(CALLBACK).mock(side_effect=[callback("QUEUED", 0.0), callback("COMPLETED", 1.0, result="done")])
    snapshots = [e async for e in client.watch(EXEC_ID)]
    assert [s.status for s in snapshots] == ["QUEUED", "COMPLETED"]
    assert not snapshots[0].is_final


async def test_watch_retries_5xx_then_succeeds(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.get(CALLBACK).mock(
        side_effect=[
            httpx.Response(503, text="<html>503</html>"),
            httpx.Response(502),
            callback("COMPLETED", 1.0, result="r"),
        ]
    )
    notices = []
    snapshots = [e async for e in client.watch(EXEC_ID, on_retry=notices.append)]
    assert snapshots[-1].succeeded
    assert [n.reason for n in notices] == ["server_error", "server_error"]


async def test_watch_5xx_beyond_cap_is_a_server_error(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.get(CALLBACK).mock(return_value=httpx.Response(500, text="<html>oops</html>"))
    with pytest.raises(ServerError, match="HTTP 500"):
        [e async for e in client.watch(EXEC_ID)]
    assert route.call_count == 4


async def test_poll_read_timeout_is_retried(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.get(CALLBACK).mock(side_effect=[httpx.ReadTimeout("slow"), callback("COMPLETED", 1.0, result="r")])
    snapshots = [e async for e in client.watch(EXEC_ID)]
    assert snapshots[-1].succeeded


@pytest.mark.parametrize(
    "answer, got",
    [
        (httpx.Response(200, text="<html>Bad gateway</html>", headers={"content-type": "text/html"}), "text/html"),
        (httpx.Response(200, json=[1, 2]), "a JSON list"),
        (httpx.Response(200, json="RUNNING"), "a JSON str"),
        (httpx.Response(200, content=b""), "an empty body"),
    ],
)
async def test_callback_answer_that_is_not_an_object_is_retried(client, mock, fake_time, answer, got):
    """A gateway's page with status 200 is transient: retried with back-off, never a final ProtocolError."""
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.get(CALLBACK).mock(side_effect=[answer, answer, callback("COMPLETED", 1.0, result="r")])
    notices = []
    snapshots = [e async for e in client.watch(EXEC_ID, on_retry=notices.append)]
    assert snapshots[-1].succeeded and route.call_count == 3
    assert [n.reason for n in notices] == ["server_error", "server_error"]
    assert got in notices[0].detail and "instead of a JSON object" in notices[0].detail
    assert 0.25 <= notices[0].delay <= 0.5 and 0.5 <= notices[1].delay <= 1.0  # capped, jittered back-off


async def test_callback_html_beyond_the_retry_budget_is_a_server_error(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.get(CALLBACK).mock(
        return_value=httpx.Response(200, text="<html>maintenance</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(ServerError, match="text/html instead of a JSON object") as err:
        await client.get_execution(EXEC_ID)
    assert not isinstance(err.value, ProtocolError) and err.value.kind == "server"  # the turn stays re-attachable
    assert route.call_count == 4  # 1 + max_retries


async def test_create_answer_html_is_a_protocol_error_and_not_repeated(client, mock):
    """A create that may have reached StackSpot is never sent twice."""
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(
        return_value=httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(ProtocolError, match="text/html"):
        await client.create_execution("code-review", "x")
    assert route.call_count == 1


async def test_callback_with_odd_fields_parses(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.get(CALLBACK).mock(
        return_value=httpx.Response(
            200, json={"progress": None, "steps": "nope", "result": {"a": 1}, "conversation_id": 5}
        )
    )
    execution = await client.get_execution(EXEC_ID)
    assert execution.status == "UNKNOWN" and execution.steps == () and execution.conversation_id == "5"
    assert execution.result_text().startswith("```json")


async def test_watch_overall_timeout(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.get(CALLBACK).mock(return_value=callback("RUNNING", 0.01))
    with pytest.raises(ExecutionTimeout, match="did not finish within 120 s"):
        [e async for e in client.watch(EXEC_ID)]
    assert fake_time.now - 1000.0 <= 120


async def test_401_mid_watch_refreshes_transparently(client, mock):
    token = mock.post(TOKEN_URL).mock(side_effect=[token_answer("t1"), token_answer("t2")])
    mock.get(CALLBACK).mock(
        side_effect=[callback("RUNNING", 0.5), httpx.Response(401), callback("COMPLETED", 1.0, result="r")]
    )
    snapshots = [e async for e in client.watch(EXEC_ID)]
    assert snapshots[-1].succeeded and token.call_count == 2


# -- policies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected", [("5", 5.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), (None, None), ("nan", None)]
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    from datetime import datetime

    now = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 20 Nov 2026 12:00:30 GMT", now=now) == 30.0


def test_retry_delay_is_capped_with_jitter():
    import random

    policy = RetryPolicy(base=0.5, cap=8.0, rng=random.Random(1))
    delays = [policy.delay(n) for n in range(1, 10)]
    assert all(0 < d <= 8.0 for d in delays)
    assert delays[-1] >= 4.0


@pytest.mark.parametrize(
    "result, text",
    [
        ("## Markdown", "## Markdown"),
        ({"a": 1}, '```json\n{\n  "a": 1\n}\n```'),
        ([1, "two"], '```json\n[\n  1,\n  "two"\n]\n```'),
        (None, ""),
        ('```json\n{"a": 1}\n```', '```json\n{"a": 1}\n```'),
    ],
    ids=["markdown", "object", "array", "null", "json-in-string"],
)
async def test_result_shapes(client, mock, result, text):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.get(CALLBACK).mock(return_value=callback("COMPLETED", 1.0, result=result))
    execution = await client.get_execution(EXEC_ID)
    assert execution.result == result and execution.result_text() == text


@pytest.mark.parametrize("status", [403, 404])
async def test_callback_4xx_is_not_retried(client, mock, status):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.get(CALLBACK).mock(return_value=httpx.Response(status, json={"message": "no"}))
    with pytest.raises((ForbiddenError, NotFoundError)):
        await client.get_execution(EXEC_ID)
    assert route.call_count == 1


# -- StackSpot's error bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, error, expected",
    [
        (
            403,
            {"type": "Forbidden", "code": "CODEBUDDY_1003_FORBIDDEN", "details": "You cannot run this quick command"},
            ForbiddenError,
            "no access to quick command 'code-review' (HTTP 403): You cannot run this quick command [CODEBUDDY_1003_FORBIDDEN]",
        ),
        (
            422,
            {
                "detail": [
                    {"loc": ["body", "input_data"], "msg": "field required", "type": "value_error.missing"},
                    {"loc": ["query", "conversation_id", 0], "msg": "not a valid ULID", "type": "value_error"},
                ]
            },
            BadRequestError,
            "(HTTP 422): body.input_data: field required; query.conversation_id.0: not a valid ULID",
        ),
        (404, "Not Found", NotFoundError, "quick command 'code-review' not found (HTTP 404): Not Found"),
        (404, {"detail": "Not Found"}, NotFoundError, "quick command 'code-review' not found (HTTP 404): Not Found"),
        (
            404,
            {"type": "NotFound", "code": "CODEBUDDY_1002_QUICK_COMMAND_NOT_FOUND", "details": None},
            NotFoundError,
            "(HTTP 404): CODEBUDDY_1002_QUICK_COMMAND_NOT_FOUND",
        ),
        (400, {"error": {"code": "E1", "message": "bad thing"}}, BadRequestError, "(HTTP 400): bad thing [E1]"),
        (400, {"message": "old style"}, BadRequestError, "(HTTP 400): old style"),
        (
            422,
            {"detail": [{"loc": None, "msg": None, "type": 3}, "plain", 7]},
            BadRequestError,
            "(HTTP 422): 3; plain; 7",
        ),
        (403, {"details": {"nested": True}}, ForbiddenError, "no access to quick command 'code-review' (HTTP 403)"),
    ],
)
async def test_error_bodies_are_shown(client, mock, status, body, error, expected):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.post(CREATE).mock(return_value=httpx.Response(status, json=body))
    with pytest.raises(error) as err:
        await client.create_execution("code-review", "x")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


async def test_gateway_html_error_page_is_not_shown(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    mock.post(CREATE).mock(
        return_value=httpx.Response(
            404, text="<html><body>Not here</body></html>", headers={"content-type": "text/html"}
        )
    )
    with pytest.raises(NotFoundError) as err:
        await client.create_execution("code-review", "x")
    assert str(err.value) == "quick command 'code-review' not found (HTTP 404)"


DAILY = {
    "type": "TooManyRequests",
    "code": "CODEBUDDY_1044_QUICK_COMMAND_RATE_LIMIT_EXCEEDED",
    "details": "Too many requests. Your limit is 50 requests in the last 1440 minutes",
}
PER_MINUTE = {**DAILY, "details": "Too many requests. Your limit is 20 requests in the last 1 minutes"}


async def test_daily_quota_stops_at_once_with_stackspot_sentence(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(return_value=httpx.Response(429, json=DAILY))
    notices = []
    with pytest.raises(QuotaExceededError) as err:
        await client.create_execution("code-review", "x", on_retry=notices.append)
    assert route.call_count == 1 and fake_time.sleeps == [] and notices == []
    message = str(err.value)
    assert "Your limit is 50 requests in the last 1440 minutes" in message and "quota" in message
    assert err.value.kind == "quota" and err.value.code == DAILY["code"] and err.value.window == 86400


async def test_daily_quota_while_polling_stops_too(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.get(CALLBACK).mock(return_value=httpx.Response(429, json={**DAILY, "details": "Limit: 6000 per day"}))
    with pytest.raises(QuotaExceededError, match="6000 per day"):
        await client.get_execution(EXEC_ID)
    assert route.call_count == 1


async def test_per_minute_limit_waits_with_capped_jittered_backoff(client, mock, fake_time):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    route = mock.post(CREATE).mock(
        side_effect=[httpx.Response(429, json=PER_MINUTE)] * 3 + [httpx.Response(200, json=EXEC_ID)]
    )
    notices = []
    assert await client.create_execution("code-review", "x", on_retry=notices.append) == EXEC_ID
    assert route.call_count == 4
    assert [n.reason for n in notices] == ["rate_limited"] * 3
    assert "20 requests in the last 1 minutes" in notices[0].detail
    for n, delay in enumerate(fake_time.sleeps, 1):
        ceiling = min(60.0, 30.0, 2.0 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_rate_limit_delay_never_exceeds_the_named_window():
    policy = RetryPolicy(rate_limit_base=2.0, rate_limit_cap=30.0)
    assert all(policy.rate_limit_delay(n, window=5.0) <= 5.0 for n in range(1, 10))
    assert all(policy.rate_limit_delay(n) <= 30.0 for n in range(1, 10))
    assert all(1.0 <= policy.rate_limit_delay(1, window=0.1) <= 2.0 for _ in range(20))


@pytest.mark.parametrize(
    "sentence, seconds",
    [
        ("Too many requests. Your limit is 50 requests in the last 1440 minutes", 86400),
        ("Your limit is 20 requests in the last 1 minutes", 60),
        ("limit: 100 requests per minute", 60),
        ("6,000 per day", 86400),
        ("daily quota reached", 86400),
        ("3 requests per 10 seconds", 10),
        ("slow down", None),
        (None, None),
    ],
)
def test_limit_window(sentence, seconds):
    assert limit_window(sentence) == seconds


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_any_error_body_parses_to_one_line(data):
    body = ErrorBody.from_json(data)
    summary = body.summary()
    assert summary is None or (isinstance(summary, str) and "\n" not in summary)


@given(
    st.dictionaries(
        st.sampled_from(["type", "code", "details", "detail", "message", "error", "error_description", "msg"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text()
        | st.lists(
            st.text()
            | st.dictionaries(
                st.sampled_from(["loc", "msg", "type"]), st.none() | st.text() | st.lists(st.text() | st.integers())
            )
        ),
    )
)
def test_error_body_with_odd_field_types(data):
    body = ErrorBody.from_json(data)
    assert body.code is None or isinstance(body.code, str)
    assert body.sentence is None or isinstance(body.sentence, str)


# -- step shapes and failure explanations ------------------------------------------------------

LLM_STEP = {
    "step_name": "analyze",
    "execution_order": 0,
    "type": "LLM",
    "step_result": {
        "answer": "looked at it",
        "sources": [
            {
                "type": "KNOWLEDGE_SOURCE",
                "name": "Code review guide",
                "slug": "review-guide",
                "document_type": "CUSTOM",
                "document_score": 0.8312,
                "document_id": "01DOC",
            },
            {"type": None, "name": None, "slug": "only-a-slug", "document_score": "0.5"},
            "a bare string",
            {"document_id": 7},
        ],
    },
}
WEB_STEP = {
    "step_name": "fetch-ticket",
    "execution_order": 1,
    "type": "API",
    "step_result": {
        "status_code": 200,
        "headers": {"content-type": "application/json"},
        "data": '{"ticket": 42}',
        "json_data": {"ticket": 42},
    },
}


async def test_llm_and_web_request_steps(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    json_only = {"step_name": "post", "execution_order": 2, "step_result": {"status_code": "201", "json_data": [1]}}
    pending = {"step_name": "format", "execution_order": 3, "type": "LLM", "step_result": None}
    mock.get(CALLBACK).mock(return_value=callback("RUNNING", 0.75, steps=[LLM_STEP, WEB_STEP, json_only, pending]))
    execution = await client.get_execution(EXEC_ID)
    llm, web, posted, waiting = execution.steps
    assert (llm.position, llm.order, llm.answer, llm.web) == (1, 0, "looked at it", None)
    assert [s.detail() for s in llm.sources] == [
        "Code review guide (KNOWLEDGE_SOURCE, score 0.83)",
        "only-a-slug (score 0.50)",
        "a bare string",
        "7",
    ]
    assert web.position == 2 and web.web is not None and web.answer is None and web.error is None
    assert web.web.summary() == 'HTTP 200 · {"ticket": 42}' and web.web.headers == {"content-type": "application/json"}
    assert posted.web is not None and posted.web.summary() == "HTTP 201 · [1]"
    assert not waiting.done and waiting.label() == "step 4 (format)"


async def test_web_request_step_with_a_long_or_odd_body(client, mock):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    body = "line one\n\x1b[31mred\x1b[0m " + "x" * 500
    step = {"step_name": "big", "step_result": {"status_code": 502, "data": body, "headers": None}}
    mock.get(CALLBACK).mock(return_value=callback("FAILURE", 0.5, steps=[step]))
    execution = await client.get_execution(EXEC_ID)
    web = execution.steps[0].web
    assert web is not None and len(web.preview()) <= 80 and "\x1b" not in web.preview() and "\n" not in web.preview()
    assert execution.failure_reason().startswith("step 1 (big): HTTP 502 · line one")


@pytest.mark.parametrize(
    "extra, progress_extra, step_result, reason",
    [
        ({"error": "LLM quota exceeded"}, {}, None, "LLM quota exceeded"),
        ({"message": "Model timed out"}, {}, None, "Model timed out"),
        ({"details": "Knowledge source missing"}, {}, None, "Knowledge source missing"),
        ({"error": {"code": "X1", "message": "nested"}}, {}, None, "nested"),
        ({}, {"error": "in progress"}, None, "in progress"),
        ({}, {"message": "progress message"}, None, "progress message"),
        ({}, {"details": "progress details"}, None, "progress details"),
        ({}, {}, {"error": "the step broke"}, "step 2 (analyze): the step broke"),
        ({}, {}, {"answer": None, "message": "step message"}, "step 2 (analyze): step message"),
        ({}, {}, {"status_code": 503, "data": "upstream down"}, "step 2 (analyze): HTTP 503 · upstream down"),
        (
            {"error": ""},
            {"error": None},
            None,
            "the execution failed on StackSpot without an explanation; it stopped at step 2 (analyze)",
        ),
    ],
)
async def test_a_failures_explanation_is_found_wherever_it_is(client, mock, extra, progress_extra, step_result, reason):
    mock.post(TOKEN_URL).mock(return_value=token_answer())
    steps = [
        {"step_name": "prepare", "execution_order": 0, "step_result": {"answer": "ok"}},
        {"step_name": "analyze", "execution_order": 1, "step_result": step_result},
        {"step_name": "format", "execution_order": 2, "step_result": None},
    ]
    document = {
        "execution_id": EXEC_ID,
        "progress": {"status": "FAILURE", "execution_percentage": 0.33, **progress_extra},
        "steps": steps,
        "result": None,
        **extra,
    }
    mock.get(CALLBACK).mock(return_value=httpx.Response(200, json=document))
    execution = await client.get_execution(EXEC_ID)
    assert execution.failed and execution.failure_reason() == reason


def test_a_failure_without_steps_says_so():
    execution = Execution.parse({"progress": {"status": "FAILED"}})
    assert execution.failed and execution.failure_reason().endswith("before any step")


STEP_KEYS = [
    "step_name",
    "execution_order",
    "type",
    "step_result",
    "answer",
    "sources",
    "status_code",
    "headers",
    "data",
    "json_data",
    "error",
    "message",
    "details",
    "name",
    "document_score",
]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(STEP_KEYS), c, max_size=6),
        max_leaves=25,
    )
)
def test_odd_steps_never_break_parsing(raw):
    execution = Execution.parse({"progress": {"status": "FAILURE"}, "steps": [raw, {"step_result": raw}]})
    assert isinstance(execution.failure_reason(), str)
    for step in execution.steps:
        assert isinstance(step.name, str) and "\n" not in step.name
        for source in step.sources:
            assert isinstance(source.detail(), str)
        if step.web is not None:
            assert isinstance(step.web.summary(), str)
