"""The real app in a real pseudo-terminal: keys arrive the way a terminal delivers them.

Pilot's `press` hands keys over one at a time; a terminal hands over whatever was typed since
the last read, in one piece. Batching bugs only show here.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

from helpers import program

_ESCAPES = re.compile(rb"\x1b(\[[0-9;?<>=$ ]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-B]|[=>78DEHM])")


class PtyApp:
    """`stackspot-tui ARGS` on the slave side of a pty, the test on the master side."""

    def __init__(self, args: list[str], env: dict[str, str], *, size: tuple[int, int] = (100, 30)) -> None:
        master, slave = os.openpty()
        columns, lines = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.process = subprocess.Popen(
            [*program(), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)},
            start_new_session=True,  # the pty becomes its controlling terminal
            close_fds=True,
        )
        os.close(slave)
        self.fd = master
        self.output = b""

    def write(self, data: bytes) -> None:
        """One write: the app reads it as one burst."""
        os.write(self.fd, data)

    def read(self, timeout: float = 0.05) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                self.output += os.read(self.fd, 1 << 16)
            except OSError:  # the app exited and closed its side
                pass

    def text(self) -> str:
        """Everything drawn so far, escapes removed (a rough but sufficient view)."""
        return _ESCAPES.sub(b"", self.output).decode("utf-8", "replace")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        """Read the app's output until the condition holds (bounded; the app keeps drawing)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen tail: {self.text()[-600:]!r}")
            if self.process.poll() is not None:
                self.read(0)
                if condition():
                    return
                raise AssertionError(
                    f"the app exited ({self.process.returncode}) waiting for {what}: {self.text()[-600:]!r}"
                )
            self.read()

    def wait_for_text(self, needle: str, timeout: float = 20.0) -> None:
        self.wait_for(lambda: needle in self.text(), repr(needle), timeout)

    def wait_exit(self, timeout: float = 30.0) -> int:
        """The app's exit status. Its last frames are read meanwhile: a terminal nobody reads
        fills up and blocks the app's writes, and its exit with them."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the app did not exit; screen tail: {self.text()[-600:]!r}")
            self.read()
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.fd)


def demo_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The demo app with a fast simulator and fast polling, history in data_dir."""
    config = data_dir / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("poll_initial = 0.02\npoll_max_interval = 0.05\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")}
    env.update(
        STACKSPOT_TUI_DATA_DIR=str(data_dir),
        STACKSPOT_TUI_CONFIG=str(config),
        STACKSPOT_SIM_DURATION="0.05",
    )
    env.update(extra)
    return env
