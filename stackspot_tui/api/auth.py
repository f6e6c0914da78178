"""OAuth2 client-credentials auth for httpx, with a cached, self-refreshing token."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx

from ..endpoints import credential_url_problem
from .errors import AuthError, ErrorBody, ProtocolError, ServerError


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # monotonic seconds

    def fresh(self, now: float) -> bool:
        return now < self.expires_at


def _refresh_margin(expires_in: float) -> float:
    # Refresh a little before expiry so a request never carries a token that dies in flight.
    return min(60.0, expires_in * 0.1)


class ClientCredentialsAuth(httpx.Auth):
    """Fetches a token on first use, refreshes it shortly before ``expires_in`` and once on a 401.

    The token request is yielded from the auth flow, so it goes through the same client,
    transport and proxy settings as API calls.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:  # never show the secret
        return f"ClientCredentialsAuth(client_id={self._client_id!r}, token_url={self.token_url!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:  # pragma: no cover - async only
        raise RuntimeError("ClientCredentialsAuth works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # The settings were checked when the client was built (endpoints.check_endpoints); this
        # is the last guard, where the secrets actually leave.
        for url, what in ((self.token_url, "the client secret"), (request.url, "the access token")):
            problem = credential_url_problem(url, what)
            if problem:
                raise AuthError(problem)
        if not self._has_fresh_token():
            async with self._lock:
                if not self._has_fresh_token():
                    response = yield self._token_request()
                    await response.aread()
                    self._token = self._parse_token(response)
        assert self._token is not None
        sent_with = self._token.value
        request.headers["Authorization"] = f"Bearer {sent_with}"
        response = yield request
        if response.status_code != 401:
            return
        # One refresh on 401: the token may have been revoked or expired early.
        async with self._lock:
            if self._token is None or self._token.value == sent_with:
                token_response = yield self._token_request()
                await token_response.aread()
                self._token = self._parse_token(token_response)
        request.headers["Authorization"] = f"Bearer {self._token.value}"
        yield request

    def _has_fresh_token(self) -> bool:
        return self._token is not None and self._token.fresh(self._clock())

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_url,
            data={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "client_credentials",
            },
            headers={"Accept": "application/json"},
        )

    def _parse_token(self, response: httpx.Response) -> Token:
        where = f"the token endpoint {self.token_url}"
        if response.status_code in (400, 401, 403):
            detail = ErrorBody.from_response(response).summary() or f"HTTP {response.status_code}"
            raise AuthError(
                f"StackSpot rejected the client credentials at {self.token_url} ({detail}); "
                "check STACKSPOT_CLIENT_ID, STACKSPOT_CLIENT_SECRET and STACKSPOT_REALM",
                status_code=response.status_code,
            )
        if response.status_code == 404:
            raise AuthError(
                f"no token endpoint at {self.token_url} (HTTP 404); check STACKSPOT_REALM or STACKSPOT_AUTH_URL",
                status_code=404,
            )
        if response.status_code >= 500:
            raise ServerError(f"{where} failed with HTTP {response.status_code}", status_code=response.status_code)
        if response.status_code != 200:
            raise AuthError(f"{where} answered HTTP {response.status_code}", status_code=response.status_code)
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ProtocolError(f"{where} did not answer JSON; check STACKSPOT_AUTH_URL") from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ProtocolError(f"{where} answered without an access_token")
        expires_in = data.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
            expires_in = 300.0  # unknown lifetime: assume short and let a 401 refresh it
        return Token(token, self._clock() + float(expires_in) - _refresh_margin(float(expires_in)))
