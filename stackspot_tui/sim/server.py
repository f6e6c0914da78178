"""The simulator as a real HTTP/1.1 server on loopback (stdlib only)."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO
from urllib.parse import parse_qsl, urlsplit

from .core import SimResponse, Simulator, coalesced

_POLL_INTERVAL = 0.05  # how fast stop() is noticed by the serving thread


def _loopback_family(host: str) -> socket.AddressFamily:
    """The address family to bind `host` with; ValueError unless every address it names is loopback."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"the simulator only listens on loopback addresses; cannot resolve {host!r}") from None
    if not all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos):
        raise ValueError(f"the simulator only listens on loopback addresses, not {host!r}")
    families = {info[0] for info in infos}
    return socket.AF_INET if socket.AF_INET in families else socket.AF_INET6


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # an idle keep-alive connection must not hold up shutdown

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], family: socket.AddressFamily
    ) -> None:
        self.address_family = family
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        # Clients hanging up mid-request is normal; anything else is a bug worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(simulator: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length or is chunked
        disable_nagle_algorithm = True  # a streamed word leaves at once, not with the next one

        def _serve(self) -> None:
            refusal = self._framing_refusal()
            if refusal is not None:
                # The unread body would be taken for the next request: end the connection.
                self.close_connection = True
                refusal.headers["Connection"] = "close"
                self._send(refusal)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(simulator.handle(self.command, parts.path, dict(parse_qsl(parts.query)), headers, body))

        def _framing_refusal(self) -> SimResponse | None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return SimResponse.json(411, {"code": "LENGTH_REQUIRED", "message": "Send a Content-Length"})
            if not (self.headers.get("Content-Length") or "0").strip().isdigit():
                return SimResponse.json(400, {"code": "BAD_REQUEST", "message": "Invalid Content-Length"})
            return None

        def _send(self, response: SimResponse) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.chunks is not None:
                self._send_chunked(response.chunks, response.cut)
                return
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def _send_chunked(self, chunks: list[tuple[float, bytes]], cut: bool) -> None:
            """A streamed answer, each chunk flushed after its delay; a cut closes without the last chunk."""
            self.send_header("Transfer-Encoding", "chunked")
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            for delay, data in coalesced(chunks):
                if delay > 0:
                    simulator.sync_sleep(delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            if cut:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:  # quiet: stdout carries the URL line
            pass

    return Handler


class SimulatorServer:
    """`with SimulatorServer(Simulator()) as server: server.url` serves on a background thread."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        family = _loopback_family(host)
        self.simulator = simulator
        self._httpd = _HTTPServer((host, port), _handler_for(simulator), family)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> SimulatorServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(_POLL_INTERVAL,), name="stackspot-simulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        # shutdown() waits for serve_forever, so it would hang if start() never ran.
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the server like Ctrl-C does; signals can only be set from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_forever(simulator: Simulator, host: str = "127.0.0.1", port: int = 8765, out: TextIO = sys.stdout) -> None:
    """Print one line with the URL, then serve until Ctrl-C or SIGTERM, and return quietly."""
    try:
        with _sigterm_as_interrupt(), SimulatorServer(simulator, host, port) as server:
            print(f"StackSpot simulator listening on {server.url}", file=out, flush=True)
            while True:
                time.sleep(3600)  # signals interrupt sleep; the server runs on its own thread
    except KeyboardInterrupt:
        pass
