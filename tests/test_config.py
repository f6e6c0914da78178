"""Settings precedence, config file parsing and permission warnings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackspot_tui.config import ConfigError, default_config_path, load_settings


def test_defaults(tmp_path):
    settings = load_settings(env={}, config_path=tmp_path / "missing.toml")
    assert settings.realm == "stackspot-freemium"
    assert settings.token_url == "https://idm.stackspot.com/stackspot-freemium/oidc/oauth/token"
    assert settings.api_url == "https://genai-code-buddy-api.stackspot.com"
    assert not settings.has_credentials


def test_precedence_flag_over_env_over_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('realm = "from-file"\napi_url = "https://file"\nclient_id = "file-id"\npoll_max_interval = 2\n')
    env = {"STACKSPOT_REALM": "from-env", "STACKSPOT_API_URL": "https://env"}
    settings = load_settings({"api_url": "https://flag", "realm": None}, env=env, config_path=path)
    assert settings.api_url == "https://flag"
    assert settings.realm == "from-env"
    assert settings.client_id == "file-id"
    assert settings.poll_max_interval == 2.0
    assert settings.token_url == "https://idm.stackspot.com/from-env/oidc/oauth/token"


def test_auth_url_overrides_realm(tmp_path):
    env = {"STACKSPOT_AUTH_URL": "http://127.0.0.1:1/x/oidc/oauth/token"}
    assert load_settings(env=env, config_path=tmp_path / "c.toml").token_url == env["STACKSPOT_AUTH_URL"]


def test_config_path_from_env_and_xdg(tmp_path):
    assert default_config_path({"STACKSPOT_TUI_CONFIG": "/x/c.toml"}) == Path("/x/c.toml")
    assert default_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "stackspot-tui" / "config.toml"


def test_data_dir_from_env(tmp_path):
    settings = load_settings(env={"STACKSPOT_TUI_DATA_DIR": str(tmp_path)}, config_path=tmp_path / "c.toml")
    assert settings.history_dir == tmp_path


@pytest.mark.parametrize(
    "text, words",
    [
        ("realm = ", "not valid TOML"),
        ("poll_initial = -1", "positive number"),
        ("realm = 3", "must be a string"),
        ("[keymap]\nsend = 5", "[keymap]"),
    ],
)
def test_bad_config_file_is_a_clear_error(tmp_path, text, words):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(env={}, config_path=path)
    assert words in str(err.value) and str(path) in str(err.value)


def test_unknown_key_is_a_warning(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('colour = "blue"\n')
    assert "unknown setting 'colour'" in load_settings(env={}, config_path=path).warnings[0]


def test_keymap_table(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[keymap]\nsend = "ctrl+s"\n')
    assert load_settings(env={}, config_path=path).keymap == {"send": "ctrl+s"}


def test_secret_in_readable_file_warns(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('client_secret = "abc"\n')
    os.chmod(path, 0o644)
    warnings = load_settings(env={}, config_path=path).warnings
    assert any("readable by others" in w and "chmod 600" in w for w in warnings)
    assert all("abc" not in w for w in warnings)
    os.chmod(path, 0o600)
    assert load_settings(env={}, config_path=path).warnings == ()


def test_secret_not_in_repr(tmp_path):
    settings = load_settings(env={"STACKSPOT_CLIENT_SECRET": "hush"}, config_path=tmp_path / "c.toml")
    assert "hush" not in repr(settings)
