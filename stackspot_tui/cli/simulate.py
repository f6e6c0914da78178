"""`simulate`: serve the StackSpot stand-in on loopback."""

from __future__ import annotations

import argparse

from ..runtime import sim_duration
from .common import EXIT_OK, Streams, UsageError, positive_float


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    sim = sub.add_parser(
        "simulate",
        help="serve the StackSpot simulator on loopback",
        description="Serve a StackSpot stand-in on a loopback port, for trying and testing.",
    )
    sim.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    sim.add_argument("--duration", type=positive_float, default=None, help="seconds an execution takes (default 3)")
    sim.add_argument("--client-id", default="demo-client", help="accepted client id (default demo-client)")
    sim.add_argument("--client-secret", default="demo-secret", help="accepted client secret (default demo-secret)")
    sim.add_argument("--token-ttl", type=positive_float, default=1199.0, help="token lifetime in seconds")
    sim.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace, streams: Streams) -> int:
    from ..sim import Simulator
    from ..sim.server import serve_forever

    simulator = Simulator(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        duration=args.duration or sim_duration(),
    )
    try:
        serve_forever(simulator, args.host, args.port, out=streams.stdout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK
