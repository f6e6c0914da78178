"""Keys typed while the app starts, before the terminal is in raw mode, reach the prompt as typed.

Until Textual switches the terminal to raw mode it is in cooked (canonical) mode: what is typed
waits in the terminal's line editor, and Enter arrives there as "\\n" (ICRNL), which the app
would read as Ctrl+J, a new line, once raw mode makes it readable. So just before the switch,
the bytes waiting are read here and handed to the app ahead of anything read later, each line
end read as the Enter it was. (Keys typed after the switch arrive as they are.)
"""

from __future__ import annotations

import os
import termios

from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver


def read_pending(fd: int) -> bytes:
    """What was typed on the terminal and not read yet; b"" when it is not a terminal."""
    if not os.isatty(fd):
        return b""
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return b""
    now = list(saved)
    now[3] &= ~(termios.ICANON | termios.ECHO)  # lflag: hand over the line being edited, unechoed
    cc = list(saved[6])
    cc[termios.VMIN], cc[termios.VTIME] = 0, 0  # a read returns at once, empty when nothing waits
    now[6] = cc
    chunks = []
    try:
        termios.tcsetattr(fd, termios.TCSANOW, now)
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    except (OSError, termios.error):
        pass
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
    return b"".join(chunks)


class TypeAheadDriver(LinuxDriver):
    """Textual's terminal driver, plus the keys typed before it started."""

    def start_application_mode(self) -> None:
        pending = read_pending(self.fileno)
        if pending:
            text = pending.decode("utf-8", "replace").replace("\n", "\r")
            # Posted before the input thread starts: they reach the app first, in order.
            for event in XTermParser().feed(text):
                self.process_message(event)
        super().start_application_mode()
