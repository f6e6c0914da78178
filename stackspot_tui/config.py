"""Settings: CLI flag > environment > config file > default."""

from __future__ import annotations

import math
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "stackspot-tui"
DEFAULT_REALM = "stackspot-freemium"
DEFAULT_API_URL = "https://genai-code-buddy-api.stackspot.com"
DEFAULT_AGENT_API_URL = "https://genai-inference-app.stackspot.com"
DEFAULT_AGENT_TOOLS_URL = "https://genai-agent-tools-api.stackspot.com"
AUTH_URL_TEMPLATE = "https://idm.stackspot.com/{realm}/oidc/oauth/token"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which file or variable."""


class SettingError(ConfigError):
    """A setting's value cannot be used (a number out of range, a malformed or unsafe URL):
    a usage error, reported before anything is saved or sent."""


@dataclass(frozen=True)
class Settings:
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    realm: str = DEFAULT_REALM
    auth_url: str | None = None  # None: built from the realm
    api_url: str = DEFAULT_API_URL
    agent_api_url: str = DEFAULT_AGENT_API_URL  # agent chat
    agent_tools_url: str = DEFAULT_AGENT_TOOLS_URL  # agent listing (optional service)
    data_dir: Path | None = None  # None: the platform's user data dir
    export_dir: Path | None = None  # where the app offers to write exports; None: the documents folder
    proxy: str | None = None
    slug: str | None = None  # default quick command for the TUI
    poll_initial: float = 0.5  # first poll after create, seconds
    poll_interval: float = 1.0  # then one poll a grid step (grows after a minute)
    poll_max_interval: float = 5.0  # never a longer silence than this while polling
    created_warning: float = 60.0  # say so when an execution stays CREATED this long
    object_input: str = "plain"  # an object prompt is sent as is ("plain") or as {"json": ...} ("json")
    execution_timeout: float = 600.0  # give up watching after this many seconds
    request_timeout: float = 30.0  # one HTTP request
    max_retries: int = 5  # 5xx / network / 429 retries per request
    keymap: Mapping[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def token_url(self) -> str:
        return self.auth_url or AUTH_URL_TEMPLATE.format(realm=self.realm)

    @property
    def history_dir(self) -> Path:
        return self.data_dir or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

    @property
    def export_directory(self) -> Path:
        """The app's default place for exports: ``export_dir``, else the platform's documents folder."""
        return self.export_dir or Path(platformdirs.user_documents_dir())

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret)


# setting name -> environment variable
ENV_VARS = {
    "client_id": "STACKSPOT_CLIENT_ID",
    "client_secret": "STACKSPOT_CLIENT_SECRET",
    "realm": "STACKSPOT_REALM",
    "auth_url": "STACKSPOT_AUTH_URL",
    "api_url": "STACKSPOT_API_URL",
    "agent_api_url": "STACKSPOT_AGENT_API_URL",
    "agent_tools_url": "STACKSPOT_AGENT_TOOLS_URL",
    "data_dir": "STACKSPOT_TUI_DATA_DIR",
    "export_dir": "STACKSPOT_TUI_EXPORT_DIR",
    "proxy": "STACKSPOT_TUI_PROXY",
    "slug": "STACKSPOT_TUI_SLUG",
}
CONFIG_ENV = "STACKSPOT_TUI_CONFIG"

_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
_FILE_KEYS = {
    "client_id",
    "client_secret",
    "realm",
    "auth_url",
    "api_url",
    "agent_api_url",
    "agent_tools_url",
    "data_dir",
    "export_dir",
    "proxy",
    "slug",
    "poll_initial",
    "poll_interval",
    "poll_max_interval",
    "created_warning",
    "object_input",
    "execution_timeout",
    "request_timeout",
    "max_retries",
}


_CHOICES = {"object_input": ("plain", "json")}


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)).parent
    return base / APP_NAME / "config.toml"


def _coerce(name: str, value: Any, origin: str) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if name in ("data_dir", "export_dir"):
            return Path(str(value)).expanduser()
        if "float" in str(kind):
            number = float(value)
            if isinstance(value, bool) or not math.isfinite(number) or number <= 0:  # NaN never times out
                raise ValueError
            return number
        if "int" in str(kind):
            number = int(value)
            if isinstance(value, bool) or number < 0:
                raise ValueError
            return number
    except (TypeError, ValueError, OverflowError):
        raise SettingError(f"{origin}: '{name}' must be a positive number, got {value!r}") from None
    if not isinstance(value, str):
        raise SettingError(f"{origin}: '{name}' must be a string, got {value!r}")
    choices = _CHOICES.get(name)
    if choices is not None and value not in choices:
        raise SettingError(f"{origin}: '{name}' must be one of {', '.join(choices)}, got {value!r}")
    return value


def read_config_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Parse a config file. A missing file is an empty config."""
    warnings: list[str] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, warnings
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "keymap":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"config file {path}: [keymap] must map binding ids to key strings")
            values["keymap"] = dict(value)
        elif key in _FILE_KEYS:
            values[key] = _coerce(key, value, f"config file {path}")
        else:
            warnings.append(f"config file {path}: unknown setting '{key}' ignored")
    if values.get("client_secret"):
        try:
            mode = path.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"config file {path} holds a client secret and is readable by others; run: chmod 600 {path}"
            )
    return values, warnings


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Resolve settings. ``overrides`` are CLI flags; ``None`` values mean "not given"."""
    env = os.environ if env is None else env
    path = config_path or default_config_path(env)
    values, warnings = read_config_file(path)
    for name, var in ENV_VARS.items():
        if env.get(var):
            values[name] = _coerce(name, env[var], f"environment variable {var}")
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value, f"option --{name.replace('_', '-')}") if name in _FILE_KEYS else value
    return replace(Settings(), **values, config_path=path, warnings=tuple(warnings))
