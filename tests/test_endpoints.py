"""Credentials travel over https only; bad URLs, proxies, numbers and data dirs are usage errors."""

from __future__ import annotations

import io
import os
import socket
import ssl
import subprocess
import threading
from dataclasses import replace

import httpx
import pytest
from helpers import SECRET, program

from stackspot_tui.api import AuthError
from stackspot_tui.api.auth import ClientCredentialsAuth
from stackspot_tui.cli import main
from stackspot_tui.config import SettingError, Settings
from stackspot_tui.endpoints import check_endpoints
from stackspot_tui.runtime import build_client

LOOPBACK = "http://127.0.0.1:8765"


def loopback(**changes: str) -> Settings:
    settings = Settings(
        auth_url=f"{LOOPBACK}/r/oidc/oauth/token",
        api_url=LOOPBACK,
        agent_api_url=LOOPBACK,
        agent_tools_url=LOOPBACK,
    )
    return replace(settings, **changes)


@pytest.mark.parametrize(
    ("settings", "env"),
    [
        (Settings(), {}),  # StackSpot's own https URLs
        (Settings(), {"HTTP_PROXY": "http://proxy.corp:3128", "HTTPS_PROXY": "proxy.corp:3128"}),  # CONNECT
        (Settings(proxy="http://proxy.corp:3128"), {}),
        (loopback(), {}),  # `stackspot-tui simulate`
        (loopback(api_url="http://localhost:9", agent_api_url="http://[::1]:9"), {}),
        (loopback(), {"HTTP_PROXY": "http://proxy.corp:3128", "NO_PROXY": "example.com, 127.0.0.1"}),
        (loopback(), {"HTTPS_PROXY": "http://proxy.corp:3128"}),  # applies to https only
        (loopback(), {"ALL_PROXY": "socks5://proxy.corp:1080", "no_proxy": "*"}),
    ],
)
def test_credentials_may_go_over_https_or_directly_to_loopback(settings, env):
    check_endpoints(settings, env)


@pytest.mark.parametrize(
    ("settings", "trusted"),
    [
        (Settings(), True),
        (loopback(), False),  # `stackspot-tui simulate`: nothing to verify, no CA bundle loaded
        (loopback(agent_api_url="https://genai-inference-app.stackspot.com"), True),
    ],
)
def test_the_ca_bundle_is_loaded_only_when_a_url_is_https(settings, trusted):
    settings = replace(settings, client_id="id", client_secret="secret")
    client = build_client(settings, demo=False)
    context = client._http._transport._pool._ssl_context  # what every https connection would use
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # Without authorities nothing verifies: an https connection it was not meant to make fails.
    assert (context.cert_store_stats()["x509_ca"] > 0) is trusted


@pytest.mark.parametrize(
    ("settings", "env", "named", "why"),
    [
        (Settings(auth_url="http://idm.example.com/token"), {}, "auth_url", "the client secret would travel in clear"),
        (Settings(api_url="http://genai.example.com"), {}, "api_url", "the access token would travel in clear"),
        (Settings(agent_api_url="http://10.0.0.5"), {}, "agent_api_url", "in clear text"),
        (
            loopback(),
            {"HTTP_PROXY": "http://proxy.corp:3128"},
            "HTTP_PROXY",
            "through the proxy http://proxy.corp:3128",
        ),
        (loopback(), {"all_proxy": "socks5://proxy.corp:1080"}, "ALL_PROXY", "through the proxy"),
        (loopback(), {"HTTP_PROXY": "http://p:1", "NO_PROXY": "localhost"}, "HTTP_PROXY", "add 127.0.0.1 to NO_PROXY"),
        (loopback(proxy="http://proxy.corp:3128"), {}, "--proxy", "through the proxy"),
        (Settings(api_url="http://[::1"), {}, "api_url", "not a valid URL"),
        (Settings(api_url="ftp://files.example.com"), {}, "api_url", "must be an https:// URL"),
        (Settings(auth_url="https:///token"), {}, "auth_url", "must be an https:// URL with a host name"),
        (Settings(proxy="not a url"), {}, "--proxy", "must be a proxy URL"),
        (Settings(proxy="proxy.corp:3128"), {}, "--proxy", "must be a proxy URL"),  # httpx needs the scheme here
        (Settings(), {"HTTPS_PROXY": "http://bad host"}, "HTTPS_PROXY", "must be a proxy URL"),
    ],
)
def test_unsafe_or_malformed_urls_are_refused_naming_the_setting(settings, env, named, why):
    with pytest.raises(SettingError) as err:
        check_endpoints(settings, env)
    assert named in str(err.value) and why in str(err.value)


async def test_the_auth_flow_itself_never_sends_a_secret_in_clear():
    """The last guard, where the secrets leave: nothing reaches the network."""
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200))
    for token_url, api_url in (
        ("http://idm.example.com/token", "https://api.example.com"),
        ("https://idm.example.com/t", "http://api.example.com"),
    ):
        auth = ClientCredentialsAuth("id", SECRET, token_url)
        async with httpx.AsyncClient(transport=transport, auth=auth) as client:
            with pytest.raises(AuthError, match=r"refusing to send the (client secret|access token)"):
                await client.get(f"{api_url}/v1/x")
    assert seen == []


class CapturingProxy:
    """A loopback "proxy" that records every byte it is sent and answers nothing useful."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    self.received += connection.recv(65536)
                    connection.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


@pytest.mark.e2e
def test_a_proxy_never_sees_the_client_secret(tmp_path):
    proxy = CapturingProxy()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT") and "proxy" not in k.lower()}
        env.update(
            STACKSPOT_CLIENT_ID="id",
            STACKSPOT_CLIENT_SECRET=SECRET,
            STACKSPOT_TUI_DATA_DIR=str(tmp_path),
            STACKSPOT_TUI_CONFIG=str(tmp_path / "none.toml"),
            HTTP_PROXY=proxy.url,
            ALL_PROXY=proxy.url,
        )
        cases = [
            ["--auth-url", "http://127.0.0.1:9/token", "--api-url", "http://127.0.0.1:9"],  # loopback, via the proxy
            ["--auth-url", "http://idm.example.com/token"],  # plain http elsewhere
        ]
        for urls in cases:
            result = subprocess.run(
                [*program(), "run", *urls, "code-review", "hello"], env=env, capture_output=True, timeout=60
            )
            [line] = result.stderr.decode().splitlines()
            assert result.returncode == 2 and "auth_url" in line and "clear text" in line, line
        assert proxy.received == b"" and not list(tmp_path.rglob("index/*"))  # nothing sent, nothing saved
    finally:
        proxy.close()


# -- usage errors (exit 2), before anything is saved or sent ------------------------------------


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("STACKSPOT") or "proxy" in k.lower()]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("STACKSPOT_TUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STACKSPOT_TUI_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("STACKSPOT_CLIENT_ID", "id")
    monkeypatch.setenv("STACKSPOT_CLIENT_SECRET", SECRET)
    monkeypatch.setattr(
        "stackspot_tui.api.client.httpx.AsyncClient.send",
        lambda *args, **kwargs: pytest.fail("a request was sent"),
    )
    return tmp_path


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        ([], {"STACKSPOT_TUI_CONFIG": "{tmp}/bad.toml"}, "'execution_timeout' must be a positive number"),
        (["--api-url", "http://[::1"], {}, "not a valid URL"),
        (["--auth-url", "http://idm.example.com/token"], {}, "clear text"),
        (["--proxy", "not a url"], {}, "must be a proxy URL"),
        ([], {"HTTPS_PROXY": "http://bad host"}, "HTTPS_PROXY"),
        ([], {"STACKSPOT_TUI_DATA_DIR": "{tmp}/a-file"}, "is a file, not a directory"),
    ],
)
def test_bad_settings_are_usage_errors_before_anything_is_saved_or_sent(cli_env, monkeypatch, args, env, says):
    (cli_env / "bad.toml").write_text("execution_timeout = nan\n")
    (cli_env / "a-file").write_text("")
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=cli_env))
    err = io.StringIO()
    assert main(["run", "code-review", "hello", *args], stdout=io.StringIO(), stderr=err) == 2, err.getvalue()
    [line] = err.getvalue().splitlines()
    assert says in line and "unexpected" not in line, line
    assert not list(cli_env.rglob("conversations/*"))  # no prompt saved


@pytest.mark.parametrize("timeout", ["nan", "-3", "inf", "0"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(cli_env, capsys, timeout):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "code-review", "hello", "--timeout", timeout])
    assert exit_.value.code == 2 and "positive number of seconds" in capsys.readouterr().err
    assert not list(cli_env.rglob("conversations/*"))


def test_the_tls_context_is_shared_and_follows_ssl_cert_file(monkeypatch, tmp_path):
    """One CA bundle load per process, yet SSL_CERT_FILE (a company CA) is still honoured."""
    import certifi

    from stackspot_tui.api.client import tls_context

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = tls_context()
    assert tls_context() is default and len(default.get_ca_certs()) > 1
    bundle = open(certifi.where()).read()
    one_ca = bundle[: bundle.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"
    (tmp_path / "company-ca.pem").write_text(one_ca)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "company-ca.pem"))
    company = tls_context()
    assert company is not default and len(company.get_ca_certs()) == 1
