"""`run` (one turn, headless) and `resume` (finish executions left running)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, TextIO

from ..api.models import result_to_text
from ..api.names import slug_problem, valid_agent_id
from ..runtime import open_store
from ..store import HistoryStore
from ..store.models import Conversation, Turn
from ..textsafe import visible, visible_json
from ..wording import counted
from .common import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommonOptions,
    Streams,
    UsageError,
    conversation_options,
    error,
    positive_float,
    print_result,
)

if TYPE_CHECKING:
    from ..engine import ConversationService, Event

# The engine (asyncio, httpx) is imported by the handlers that send or fetch: the other commands,
# and a refused argument, do not wait for it.


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    run = sub.add_parser(
        "run",
        parents=[common],
        intermixed=True,  # `run SLUG PROMPT --json` as well as `run SLUG --json PROMPT`
        usage="%(prog)s [options] (SLUG | --agent AGENT_ID) [PROMPT]",
        help="run one turn headless: a quick command, or a chat with an agent",
        description="Run a quick command and print its result, or ask an agent and print its answer as it "
        "streams. Progress goes to stderr.",
    )
    run.add_argument("slug", metavar="SLUG", nargs="?", help="quick command slug (not with --agent)")
    run.add_argument(
        "prompt", metavar="PROMPT", nargs="?", help="the prompt; '-' or absent with piped stdin reads stdin"
    )
    run.add_argument("--agent", metavar="AGENT_ID", help="chat with this StackSpot AI agent instead")
    run.add_argument("--json-input", action="store_true", help="send the prompt as a JSON object")
    conversation_options(run)
    run.add_argument(
        "--json",
        action="store_true",
        help="JSON instead of text: one object at the end (an agent's pieces before it, one per line)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="progress on stderr even when it is not a terminal")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    run.add_argument("--timeout", type=positive_float, metavar="SECONDS", help="give up watching after this long")
    run.set_defaults(handler=_run)

    resume = sub.add_parser(
        "resume",
        parents=[common],
        help="fetch the answers of executions left running and print them",
        description="Fetch the answers of executions left running (the app quit, a crash, a lost connection). "
        "Nothing is sent again.",
    )
    resume.add_argument("id", metavar="ID", nargs="?", help="only this conversation")
    resume.add_argument("--all", action="store_true", help="also the turns you stopped watching (Esc in the app)")
    resume.add_argument("--json", action="store_true", help="one JSON object per resumed turn")
    resume.set_defaults(handler=_resume)


# -- run -------------------------------------------------------------------------------------


def read_prompt(prompt_arg: str | None, json_input: bool, stdin: TextIO) -> tuple[str, str | dict[str, Any]]:
    """The prompt text and the input_data to send."""
    if prompt_arg is None or prompt_arg == "-":
        if prompt_arg is None and stdin.isatty():
            raise UsageError("no prompt: give PROMPT or pipe text on stdin")
        raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
        try:
            prompt = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"stdin is not UTF-8 text (invalid byte at position {exc.start})") from None
    else:
        prompt = prompt_arg
    if "\x00" in prompt:
        raise UsageError("the prompt holds NUL bytes: is this binary data?")
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    if not json_input:
        return prompt, prompt
    try:
        data = json.loads(prompt)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--json-input: the prompt is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UsageError("--json-input: the prompt must be a JSON object")
    return prompt, data


def _target(args: argparse.Namespace) -> tuple[str | None, str | None, str | None]:
    """(slug, agent id, prompt argument): with --agent the one positional is the prompt."""
    if args.agent is None:
        if args.slug is None:
            raise UsageError("give a quick command SLUG, or --agent AGENT_ID")
        problem = slug_problem(args.slug)
        if problem:  # refused before anything is read, sent or saved
            raise UsageError(problem)
        return args.slug, None, args.prompt
    if args.prompt is not None:
        raise UsageError(f"with --agent, give only the PROMPT (got {args.slug!r} and {args.prompt!r})")
    if not valid_agent_id(args.agent):
        raise UsageError(f"--agent: {args.agent!r} is not an agent id (letters, digits, _ . : -)")
    if args.json_input:
        raise UsageError("--json-input is for quick commands: agents take a text prompt")
    return None, args.agent, args.slug


class AnswerWriter:
    """The answer on stdout as it arrives, for both kinds of turn: text, or JSON lines."""

    def __init__(self, stdout: TextIO, *, as_json: bool) -> None:
        self._out = stdout
        self._json = as_json
        self._tty = stdout.isatty()
        self.ends_with_newline = True
        self.written = False

    def delta(self, turn: Turn, text: str) -> None:
        if self._json:
            if turn.is_agent:  # a quick command's result is in the final object only
                self._out.write(visible_json({"delta": text}) + "\n")
                self._out.flush()
            return
        self._out.write(visible(text) if self._tty else text)
        self._out.flush()
        self.written = True
        self.ends_with_newline = text.endswith("\n")

    def finish(self, turn: Turn, conversation: Conversation) -> None:
        if self._json:
            print(visible_json(turn_document(turn, conversation)), file=self._out)
        elif self.written and not self.ends_with_newline:
            print(file=self._out)
        self._out.flush()


def turn_document(turn: Turn, conversation: Conversation) -> dict[str, Any]:
    document: dict[str, Any] = {
        "status": turn.status,
        "result": turn.result,
        "error": turn.error,
        "conversation_id": conversation.conversation_id,
        "execution_id": turn.execution_id,
        "conversation": conversation.id,
        "turn": turn.seq + 1,  # counted from 1, as the app, `show` and `search` count them
    }
    if turn.is_agent:
        document.update(
            agent_id=turn.agent_id,
            stop_reason=turn.stop_reason,
            tokens=turn.tokens,
            sources=turn.sources,
            incomplete=turn.incomplete,
        )
    return document


def _conversation_for(
    service: ConversationService, args: argparse.Namespace, slug: str | None, agent: str | None
) -> Conversation:
    store = service.store
    if args.conversation:
        conversation = store.get_conversation(store.resolve_id(args.conversation))
        if agent and conversation.agent_id != agent:
            raise UsageError(f"conversation {conversation.id} is with {conversation.target}, not agent {agent}")
        if slug and conversation.agent_id:
            raise UsageError(f"conversation {conversation.id} is with {conversation.target}: use --agent")
        return conversation
    if args.continue_latest:
        return service.latest_or_new(slug or "", agent_id=agent)
    return service.new_conversation(slug or "", agent_id=agent)


def _warn_if_maybe_sent(store: HistoryStore, conversation: Conversation, prompt: str, streams: Streams) -> None:
    """The same prompt as a last turn StackSpot never confirmed: sending it again may run it twice."""
    if not conversation.next_seq:
        return
    last = store.turns(conversation.id, start=conversation.next_seq - 1)
    if last and last[-1].maybe_sent and last[-1].prompt == prompt:
        print(
            f"stackspot-tui: warning: turn {last[-1].seq + 1} of {conversation.id} holds this prompt and may "
            "already have reached StackSpot (never confirmed): it may now run twice",
            file=streams.stderr,
            flush=True,
        )


def _run(args: argparse.Namespace, streams: Streams) -> int:
    common = CommonOptions.from_args(args)
    settings = common.settings(streams, execution_timeout=args.timeout)
    slug, agent, prompt_arg = _target(args)
    prompt, input_data = read_prompt(prompt_arg, args.json_input, streams.stdin)
    import asyncio

    from ..engine import AnswerDelta, TurnSaved
    from ..progress import progress_lines
    from ..runtime import build_service

    show_progress = not args.quiet and (args.verbose or streams.stderr.isatty())
    writer = AnswerWriter(streams.stdout, as_json=args.json)
    saved: list[Turn] = []  # the turn, once on disk: what Ctrl+C leaves behind is told from it

    def on_event(event: Event) -> None:
        if isinstance(event, TurnSaved):
            saved.append(event.turn)
        if isinstance(event, AnswerDelta):
            writer.delta(event.turn, event.text)
        elif show_progress:
            for line in progress_lines(event):
                print(line.text, file=streams.stderr, flush=True)

    async def turn() -> int:
        service = build_service(settings, demo=common.demo)
        async with service.client:
            conversation = _conversation_for(service, args, slug, agent)
            _warn_if_maybe_sent(service.store, conversation, prompt, streams)
            turn = await service.send(conversation.id, prompt, input_data=input_data, slug=slug, on_event=on_event)
            conversation = service.store.get_conversation(conversation.id)
        writer.finish(turn, conversation)
        if turn.status == "COMPLETED":
            return EXIT_OK
        if not args.json:
            message = turn.error or turn.status
            if turn.is_agent and turn.result:
                message += f"; the answer above is partial (kept in conversation {conversation.id})"
            error(streams.stderr, message)
        return EXIT_INTERRUPTED if turn.needs_reattach else EXIT_FAILED

    try:
        return asyncio.run(turn())
    except KeyboardInterrupt:
        if not saved:
            raise
        left = open_store(settings, demo=common.demo).get_turn(saved[0].conversation, saved[0].seq)
        where = f"{left.conversation} turn {left.seq + 1}"
        if left.needs_reattach:
            error(
                streams.stderr, f"stopped watching {where}: it goes on at StackSpot; `stackspot-tui resume` fetches it"
            )
        else:
            error(streams.stderr, f"stopped {where}: {left.status_words}")
        return EXIT_CANCELLED


# -- resume ----------------------------------------------------------------------------------


def _resume(args: argparse.Namespace, streams: Streams) -> int:
    import asyncio

    from ..engine import fetchable_turns
    from ..runtime import build_service

    common = CommonOptions.from_args(args)
    settings = common.settings(streams)
    store = open_store(settings, demo=common.demo)
    only = store.resolve_id(args.id) if args.id else None
    pending = fetchable_turns(store, conversation_id=only, include_stopped=args.all)
    if not pending:
        stopped = [] if args.all else fetchable_turns(store, conversation_id=only, include_stopped=True)
        hint = (
            f" ({counted(len(stopped), 'turn')} you stopped watching: `resume --all` fetches them)" if stopped else ""
        )
        print(f"nothing to resume: no execution was left running{hint}", file=streams.stderr)
        return EXIT_OK

    async def resume_all() -> int:
        service = build_service(settings, demo=common.demo, store=store)
        worst = EXIT_OK
        async with service.client:
            for conversation, turn in pending:
                print(
                    f"resuming {conversation.id} turn {turn.seq + 1} (execution {turn.execution_id})",
                    file=streams.stderr,
                )
                turn = await service.reattach(conversation.id, turn.seq)
                if args.json:
                    document = {
                        "conversation": conversation.id,
                        "turn": turn.seq + 1,
                        "execution_id": turn.execution_id,
                        "status": turn.status,
                        "result": turn.result,
                        "error": turn.error,
                    }
                    print(visible_json(document), file=streams.stdout)
                elif turn.status == "COMPLETED":
                    print_result(result_to_text(turn.result), streams.stdout)
                if turn.status != "COMPLETED":
                    if not args.json:
                        error(streams.stderr, f"{conversation.id} turn {turn.seq + 1}: {turn.error or turn.status}")
                    worst = max(worst, EXIT_INTERRUPTED if turn.needs_reattach else EXIT_FAILED)
        return worst

    return asyncio.run(resume_all())
