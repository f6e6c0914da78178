"""Async StackSpot client: create an execution, poll it, watch it to the end."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from .. import __version__
from ..textsafe import one_line
from .auth import ClientCredentialsAuth
from .errors import (
    QUOTA_WINDOW,
    AuthError,
    BadRequestError,
    ErrorBody,
    ExecutionTimeout,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    ProtocolError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    StackSpotError,
    UnexpectedAnswerError,
    limit_window,
)
from .models import Execution, parse_timestamp
from .names import check_slug
from .policy import PollPolicy, RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from ..config import Settings


@dataclass(frozen=True)
class RetryNotice:
    """A request failed and will be tried again after ``delay`` seconds."""

    reason: str  # "rate_limited" | "server_error" | "network"
    attempt: int  # 1-based retry number
    max_attempts: int
    delay: float
    detail: str


RetryCallback = Callable[[RetryNotice], Awaitable[None] | None]

# Gateways answer these before the request reaches the service: safe to repeat a create.
_CREATE_RETRY_STATUSES = frozenset({429, 502, 503, 504})


@functools.cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=True)  # reads SSL_CERT_FILE / SSL_CERT_DIR


def tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs tens of milliseconds: once per process and certificate setting."""
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def no_trust_context() -> ssl.SSLContext:
    """For a client whose every URL is plain http on loopback, or answered in process: it trusts
    no certificate authority, so a TLS connection it was never meant to make fails verification.
    The CA bundle (~50 ms of CPU) is then not loaded at all."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names


class StackSpotClient:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        api_url: str,
        proxy: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        request_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        execution_timeout: float = 600.0,
        object_input: str = "plain",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        tls: bool = True,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.auth = ClientCredentialsAuth(client_id, client_secret, token_url, clock=clock)
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self.execution_timeout = execution_timeout
        self.object_input = object_input  # "plain" or "json": how an object prompt is sent
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._transport = transport
        self._proxy = proxy
        self._request_timeout = request_timeout
        self._tls = tls  # False: no https URL anywhere (see no_trust_context)

    @functools.cached_property
    def _http(self) -> httpx.AsyncClient:
        # Made at the first request, not with the client: the CA bundle and the proxy transports
        # cost tens of milliseconds that the app's first frame need not wait for.
        return httpx.AsyncClient(
            auth=self.auth,
            transport=self._transport,
            proxy=self._proxy,
            verify=tls_context() if self._tls else no_trust_context(),
            trust_env=True,  # HTTP(S)_PROXY / NO_PROXY
            timeout=httpx.Timeout(self._request_timeout, connect=min(10.0, self._request_timeout)),
            headers={"User-Agent": f"stackspot-tui/{__version__}", "Accept": "application/json"},
        )

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the client times polls and the overall timeout with."""
        return self._clock

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
    ) -> StackSpotClient:
        client_id, client_secret = settings.client_id, settings.client_secret
        if not (client_id and client_secret):
            raise AuthError(
                "no StackSpot credentials: set STACKSPOT_CLIENT_ID and STACKSPOT_CLIENT_SECRET "
                f"(or client_id/client_secret in {settings.config_path}), or use --demo"
            )
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            token_url=settings.token_url,
            api_url=settings.api_url,
            proxy=settings.proxy,
            transport=transport,
            request_timeout=settings.request_timeout,
            retry=RetryPolicy(max_retries=settings.max_retries),
            poll=PollPolicy(
                initial=settings.poll_initial,
                interval=settings.poll_interval,
                max_interval=settings.poll_max_interval,
            ),
            execution_timeout=settings.execution_timeout,
            object_input=settings.object_input,
            **kwargs,
        )

    async def aclose(self) -> None:
        if "_http" in self.__dict__:  # never made: nothing to close
            await self._http.aclose()

    async def __aenter__(self) -> StackSpotClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- API -----------------------------------------------------------------------------

    async def create_execution(
        self,
        slug: str,
        input_data: str | dict[str, Any],
        conversation_id: str | None = None,
        *,
        on_retry: RetryCallback | None = None,
    ) -> str:
        """Start a quick command; returns the execution id.

        An object ``input_data`` is sent as is, or as ``{"json": …}`` when ``object_input`` is
        "json" (clients disagree on the shape StackSpot wants). A slug StackSpot would refuse
        raises InvalidSlugError before anything is sent.
        """
        check_slug(slug)
        if isinstance(input_data, dict) and self.object_input == "json":
            input_data = {"json": input_data}
        params = {"conversation_id": conversation_id} if conversation_id else None
        url = f"{self.api_url}/v1/quick-commands/create-execution/{quote(slug, safe='')}"
        response = await self._request(
            "POST",
            url,
            what=f"quick command '{slug}'",
            params=params,
            json={"input_data": input_data},
            idempotent=False,
            on_retry=on_retry,
        )
        data = _json(response, "create-execution")
        if isinstance(data, dict):  # tolerate {"execution_id": "..."} as well as a bare string
            data = data.get("execution_id") or data.get("id")
        if not isinstance(data, str) or not data.strip():
            raise ProtocolError("create-execution answered without an execution id")
        return data.strip()

    async def get_execution(self, execution_id: str, *, on_retry: RetryCallback | None = None) -> Execution:
        url = f"{self.api_url}/v1/quick-commands/callback/{quote(execution_id, safe='')}"
        data = await self._request(
            "GET", url, what=f"execution {execution_id}", on_retry=on_retry, accept=_callback_document
        )
        return Execution.parse(data)

    async def watch(
        self,
        execution_id: str,
        *,
        on_retry: RetryCallback | None = None,
        started_at: float | None = None,
        created_at: float | None = None,
    ) -> AsyncIterator[Execution]:
        """Poll until COMPLETED/FAILURE/ERROR, yielding every answer (changed or not).

        ``started_at`` (monotonic, default now) starts the overall timeout. ``created_at`` is
        when StackSpot answered the create: the poll grid is anchored on it. Without it (a
        re-attach) the first poll goes at once and the grid is anchored on the execution's
        ``progress.start`` when the clocks agree, else on that first poll.
        """
        start = self._clock() if started_at is None else started_at
        plan = self.poll.plan(start if created_at is None else created_at, reattached=created_at is None)
        when = plan.first(self._clock())
        anchored = created_at is not None
        while True:
            delay = max(0.0, when - self._clock())
            if self._clock() + delay - start > self.execution_timeout:
                raise ExecutionTimeout(
                    f"execution {execution_id} did not finish within {self.execution_timeout:g} s; "
                    "it may still be running on StackSpot (resume it later)"
                )
            await self._sleep(delay)
            sent_at = self._clock()
            execution = await self.get_execution(execution_id, on_retry=on_retry)
            if not anchored:
                anchored = True
                plan.anchor = _server_start(execution, sent_at, self._wall()) or sent_at
            yield execution
            if execution.is_final:
                return
            plan.observe(sent_at, execution)
            when = plan.next(self._clock())

    # -- transport -------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        idempotent: bool = True,
        on_retry: RetryCallback | None = None,
        stream: bool = False,
        error_for: Callable[[httpx.Response, str], StackSpotError] | None = None,
        accept: Callable[[httpx.Response], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One request with the retry policy; returns ``accept(response)`` for a 2xx (the response
        itself by default).

        ``stream=True`` answers before the body is read: the caller reads and closes it.
        ``error_for`` turns a non-2xx answer into an error. ``accept`` may raise
        UnexpectedAnswerError (a gateway's HTML page with status 200): that answer is retried
        like a 5xx when the request is idempotent.
        """
        attempt = 0
        error: StackSpotError
        while True:
            wait: float | None = None
            try:
                if stream:
                    response = await self._http.send(self._http.build_request(method, url, **kwargs), stream=True)
                else:
                    response = await self._http.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                error = NetworkError(
                    f"StackSpot did not answer in time ({_failed_host(exc, url)}): {type(exc).__name__}"
                )
                retryable = idempotent or isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                reason = "network"
            except httpx.TransportError as exc:
                error = NetworkError(f"cannot reach StackSpot at {_failed_host(exc, url)}: {_transport_detail(exc)}")
                # A refused or failed connection never reached the server: safe to repeat.
                retryable = idempotent or isinstance(exc, httpx.ConnectError)
                reason = "network"
            except ServerError as exc:  # token endpoint 5xx, raised from the auth flow
                error, retryable, reason = exc, True, "server_error"
            else:
                if response.is_success:
                    if accept is None:
                        return response
                    try:
                        return accept(response)
                    except UnexpectedAnswerError as exc:
                        error, retryable, reason = exc, idempotent, "server_error"
                else:
                    if stream:
                        response = await _read_error_answer(response)
                    error = (error_for or _http_error)(response, what)
                    code = response.status_code
                    retryable = code == 429 or code >= 500 if idempotent else code in _CREATE_RETRY_STATUSES
                    reason = "rate_limited" if code == 429 else "server_error"
                    if isinstance(error, QuotaExceededError):
                        raise error  # a quota counted in hours or days: retrying cannot beat it
                    if isinstance(error, RateLimitedError):
                        wait = error.retry_after
                        if wait is not None and wait > self.retry.max_retry_after:
                            raise RateLimitedError(
                                f"{error}; retry after {wait:.0f} s",
                                retry_after=wait,
                                code=error.code,
                                window=error.window,
                            )
            attempt += 1
            if not retryable or attempt > self.retry.max_retries:
                raise error
            if wait is None:
                wait = (
                    self.retry.rate_limit_delay(attempt, error.window)
                    if isinstance(error, RateLimitedError)
                    else self.retry.delay(attempt)
                )
            if on_retry is not None:
                notice = RetryNotice(reason, attempt, self.retry.max_retries, wait, str(error))
                maybe = on_retry(notice)
                if maybe is not None:
                    await maybe
            await self._sleep(wait)


async def _read_error_answer(response: httpx.Response) -> httpx.Response:
    """A streamed error answer with its body read (for the message), its connection released."""
    try:
        await response.aread()
    except httpx.HTTPError:  # the body is only for the message: an answer without it will do
        return httpx.Response(response.status_code, headers=response.headers, request=response.request)
    finally:
        await response.aclose()
    return response


def _server_start(execution: Execution, sent_at: float, wall_now: float) -> float | None:
    """``progress.start`` on the monotonic clock, when it is a plausible past moment."""
    started = parse_timestamp(execution.progress.start)
    if started is None:
        return None
    age = wall_now - started
    return sent_at - age if 0.0 <= age <= 7 * 86400 else None


def _json(response: httpx.Response, where: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise ProtocolError(
            f"{where} did not answer JSON (got {_content_type(response)}); is STACKSPOT_API_URL right?"
        ) from None


def _callback_document(response: httpx.Response) -> dict[str, Any]:
    """A callback answer must be a JSON object; anything else is a gateway's page (transient)."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        got = _content_type(response) if response.content else "an empty body"
    else:
        if isinstance(data, dict):
            return data
        got = f"a JSON {type(data).__name__}"
    raise UnexpectedAnswerError(
        f"the execution callback answered HTTP {response.status_code} with {got} instead of a JSON object",
        status_code=response.status_code,
    )


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip() or "unknown content type"


def _failed_host(exc: httpx.TransportError, url: str) -> str:
    """Scheme and host of the request that failed: the token endpoint or the API."""
    try:
        parsed = exc.request.url
    except RuntimeError:  # no request attached
        parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def _transport_detail(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "host name not found (DNS)"
    if "connection refused" in lowered or "connect call failed" in lowered:
        return "connection refused"
    return one_line(text, 120)


def _http_error(response: httpx.Response, what: str) -> StackSpotError:
    code = response.status_code
    body = ErrorBody.from_response(response)
    summary = body.summary()
    suffix = f": {summary}" if summary else ""
    if code == 401:
        return AuthError(f"StackSpot rejected the access token for {what} (HTTP 401){suffix}", status_code=code)
    if code == 403:
        return ForbiddenError(f"no access to {what} (HTTP 403){suffix}", status_code=code, code=body.code)
    if code == 404:
        return NotFoundError(f"{what} not found (HTTP 404){suffix}", status_code=code, code=body.code)
    if code in (400, 422):
        return BadRequestError(
            f"StackSpot refused the request for {what} (HTTP {code}){suffix}", status_code=code, code=body.code
        )
    if code == 429:
        return _rate_limit_error(response, body, what)
    if code >= 500:
        return ServerError(f"StackSpot failed on {what} (HTTP {code}){suffix}", status_code=code, code=body.code)
    return ServerError(f"unexpected HTTP {code} for {what}{suffix}", status_code=code, code=body.code)


def _rate_limit_error(response: httpx.Response, body: ErrorBody, what: str) -> RateLimitedError:
    """A 429: a quota over hours or days (stop) or a short window (wait and retry)."""
    wait = parse_retry_after(response.headers.get("Retry-After"))
    window = limit_window(body.sentence)
    summary = body.summary()
    if wait is None and window is not None and window >= QUOTA_WINDOW:
        return QuotaExceededError(
            f"StackSpot quota used up for {what} (HTTP 429): {summary}; retrying will not help until the quota resets",
            code=body.code,
            window=window,
        )
    suffix = f": {summary}" if summary else ""
    return RateLimitedError(
        f"StackSpot rate limit reached for {what} (HTTP 429){suffix}", retry_after=wait, code=body.code, window=window
    )
