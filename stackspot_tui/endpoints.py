"""Where credentials may go: every StackSpot URL and proxy checked before anything is sent.

The client secret (token request) and the access token (every API call) travel over https
only. Plain http is accepted for loopback stand-ins such as `stackspot-tui simulate`, and
then only directly: a proxy would read the secret in clear. An https target through an
http proxy is fine (the proxy only relays an encrypted CONNECT tunnel).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.request
from collections.abc import Callable, Mapping

import httpx

from .config import SettingError, Settings

# (what, where it is set, what travels to it, its value)
_CREDENTIAL_URLS: tuple[tuple[str, str, str, Callable[[Settings], str]], ...] = (
    ("auth_url", "--auth-url or STACKSPOT_AUTH_URL", "the client secret", lambda s: s.token_url),
    ("api_url", "--api-url or STACKSPOT_API_URL", "the access token", lambda s: s.api_url),
    ("agent_api_url", "STACKSPOT_AGENT_API_URL", "the access token", lambda s: s.agent_api_url),
    ("agent_tools_url", "STACKSPOT_AGENT_TOOLS_URL", "the access token", lambda s: s.agent_tools_url),
)
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_HOST = re.compile(r"[A-Za-z0-9._:-]+")  # a name, an IPv4 or an IPv6 address (httpx drops the brackets)


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credential_url_problem(url: str | httpx.URL, what: str) -> str | None:
    """Why ``what`` (a secret) must not be sent to ``url``, or None: https, or http on loopback."""
    parsed = httpx.URL(url)
    if parsed.scheme == "https" or (parsed.scheme == "http" and is_loopback(parsed.host)):
        return None
    return (
        f"refusing to send {what} to {parsed.copy_with(query=None)}: only https carries credentials "
        "(plain http only to a loopback stand-in such as `stackspot-tui simulate`)"
    )


def _parse(url: str, setting: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise SettingError(f"{setting} is not a valid URL ({exc}): {url!r}") from None
    if parsed.scheme not in ("http", "https") or not _HOST.fullmatch(parsed.host):
        raise SettingError(f"{setting} must be an https:// URL with a host name, got {url!r}")
    return parsed


def _parse_proxy(url: str, setting: str, *, from_environment: bool = False) -> httpx.URL:
    if from_environment and "://" not in url:
        url = f"http://{url}"  # httpx reads an environment proxy "host:port" as http
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise SettingError(f"{setting} is not a valid proxy URL ({exc}): {url!r}") from None
    if parsed.scheme not in _PROXY_SCHEMES or not _HOST.fullmatch(parsed.host):
        raise SettingError(f"{setting} must be a proxy URL such as http://proxy.example:3128, got {url!r}")
    return parsed


def _environment_proxies(env: Mapping[str, str] | None) -> dict[str, str]:
    """The proxies httpx takes from the environment: scheme ("http", "https", "all", "no") -> value."""
    if env is None:
        return urllib.request.getproxies()  # what httpx reads, registry and system settings included
    found: dict[str, str] = {}
    for name, value in env.items():
        if name.lower().endswith("_proxy") and value:
            found.setdefault(name.lower().removesuffix("_proxy"), value)
    return found


def _bypassed(host: str, no_proxy: str) -> bool:
    """NO_PROXY names this host exactly (or is "*"). Wildcard and suffix forms are not trusted
    here: a wrong guess would send a secret to the proxy."""
    entries = {entry.strip().lower().strip("[]") for entry in no_proxy.split(",") if entry.strip()}
    return "*" in entries or host.lower().strip("[]") in entries


def check_endpoints(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """Raise SettingError, naming the setting, when a URL or proxy is malformed or would let a
    credential travel in clear text. ``env``: the environment (default: this process's)."""
    no_proxy = ""
    if settings.proxy:
        proxies = {"all": settings.proxy}
        sources = {"all": "proxy (--proxy or STACKSPOT_TUI_PROXY)"}
    else:  # httpx uses the environment's proxies only when none is given
        found = _environment_proxies(env)
        proxies = {scheme: found[scheme] for scheme in ("http", "https", "all") if found.get(scheme)}
        sources = {scheme: f"{scheme.upper()}_PROXY" for scheme in proxies}
        no_proxy = found.get("no", "")
    for scheme, url in proxies.items():
        _parse_proxy(url, sources[scheme], from_environment=not settings.proxy)
    for name, where, what, value in _CREDENTIAL_URLS:
        setting = f"{name} ({where})"
        parsed = _parse(value(settings), setting)
        if parsed.scheme == "https":
            continue
        if not is_loopback(parsed.host):
            raise SettingError(
                f"{setting} is {parsed.copy_with(query=None)}: {what} would travel in clear text; use https "
                "(plain http is only for a loopback stand-in such as `stackspot-tui simulate`)"
            )
        via = "all" if settings.proxy else next((s for s in ("http", "all") if s in proxies), None)
        if via is None or (not settings.proxy and _bypassed(parsed.host, no_proxy)):
            continue
        proxy = _parse_proxy(proxies[via], sources[via], from_environment=not settings.proxy)
        raise SettingError(
            f"{setting} is plain http and {sources[via]} would send {what} through the proxy "
            f"{proxy.scheme}://{proxy.host}{f':{proxy.port}' if proxy.port else ''} in clear text; "
            f"use https, or add {parsed.host} to NO_PROXY"
        )


def needs_tls(settings: Settings) -> bool:
    """Whether any StackSpot URL is https. When none is, `check_endpoints` has allowed only plain
    http to loopback, sent directly: no TLS connection is made, to them or to a proxy."""
    return any(httpx.URL(value(settings)).scheme == "https" for *_, value in _CREDENTIAL_URLS)
