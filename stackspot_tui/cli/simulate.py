"""`simulate`: serve the StackSpot stand-in on loopback."""

from __future__ import annotations

import argparse

from ..runtime import sim_duration, sim_progress
from ..sim.quick import OBJECT_INPUTS, PROGRESS_MODES
from .common import EXIT_OK, Streams, UsageError, positive_float


def non_negative_float(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else positive_float(text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    sim = sub.add_parser(
        "simulate",
        help="serve the StackSpot simulator on loopback",
        description="Serve a StackSpot stand-in on a loopback port, for trying and testing.",
    )
    sim.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    sim.add_argument("--duration", type=positive_float, default=None, help="seconds an execution takes (default 3)")
    sim.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default=None,
        help="how execution_percentage moves: finished steps (steps, the default), elapsed time (linear), "
        "not at all until the end (stalled), or absent (none); a slug can choose its own: delay-<ms>-<mode>",
    )
    sim.add_argument(
        "--object-input",
        choices=OBJECT_INPUTS,
        default="any",
        help='which object input_data shapes create-execution accepts: any, plain, or json ({"json": ...} only)',
    )
    sim.add_argument("--client-id", default="demo-client", help="accepted client id (default demo-client)")
    sim.add_argument("--client-secret", default="demo-secret", help="accepted client secret (default demo-secret)")
    sim.add_argument("--token-ttl", type=positive_float, default=1199.0, help="token lifetime in seconds")
    agents = sim.add_argument_group("agents")
    agents.add_argument(
        "--first-token", type=non_negative_float, default=0.8, help="seconds before an agent's first word (default 0.8)"
    )
    agents.add_argument("--word-rate", type=positive_float, default=40.0, help="words per second after it (default 40)")
    agents.add_argument(
        "--max-prompt-chars",
        type=int,
        default=200_000,
        help="a conversation's prompts over this many characters get a 400 (default 200000)",
    )
    agents.add_argument("--no-agent-list", action="store_true", help="answer 404 to the agent listing")
    sim.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace, streams: Streams) -> int:
    from ..sim import Pacing, Simulator
    from ..sim.server import serve_forever

    simulator = Simulator(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        duration=args.duration or sim_duration(),
        pacing=Pacing(first_token=args.first_token, per_word=1 / args.word_rate),
        max_prompt_chars=args.max_prompt_chars,
        agent_listing=not args.no_agent_list,
        progress=args.progress or sim_progress(),
        object_input=args.object_input,
    )
    try:
        serve_forever(simulator, args.host, args.port, out=streams.stdout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK
