"""Running the real `stackspot-tui` program in tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

SECRET = "e2e-Sup3r-Secret-Value"


def program() -> list[str]:
    script = Path(sys.executable).parent / "stackspot-tui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stackspot_tui"]


@dataclass
class SimProcess:
    process: subprocess.Popen
    url: str

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def requests(self) -> list[dict]:
        return httpx.get(f"{self.url}/_sim/requests").json()

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")}
        env.update(
            STACKSPOT_CLIENT_ID="demo-client",
            STACKSPOT_CLIENT_SECRET=SECRET,
            STACKSPOT_API_URL=self.url,
            STACKSPOT_AGENT_API_URL=self.url,
            STACKSPOT_AGENT_TOOLS_URL=self.url,
            STACKSPOT_AUTH_URL=f"{self.url}/stackspot-freemium/oidc/oauth/token",
            STACKSPOT_TUI_DATA_DIR=str(data_dir),
            STACKSPOT_TUI_CONFIG=str(data_dir / "no-config.toml"),
            NO_PROXY="127.0.0.1,localhost",
        )
        env.update(extra)
        return env


def start_simulator(duration: float = 0.3, *extra: str) -> SimProcess:
    process = subprocess.Popen(
        [*program(), "simulate", "--port", "0", "--duration", str(duration), "--client-secret", SECRET, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"simulator did not start: {line!r} {process.stderr.read()!r}")
    return SimProcess(process, line.rsplit(" ", 1)[-1].strip())


def run_cli(
    *args: str, env: dict[str, str], input: str | bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*program(), *args],
        env=env,
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        timeout=timeout,
    )


def last_json_line(output: bytes) -> dict:
    return json.loads(output.decode().strip().splitlines()[-1])


def sigint_as_in_a_shell() -> None:
    """Popen preexec_fn: Ctrl-C reaches the child as from an interactive shell. A suite started in
    the background (a non-interactive shell's '&') passes SIGINT on ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
