"""History commands: conversations, show, search, export, import, rename, archive, unarchive,
delete, repair."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path

from .. import export
from ..runtime import history_root, open_store
from ..store import HistoryStore
from ..store.errors import UnknownConversationError
from ..store.models import Conversation
from ..textsafe import one_line, visible_json
from ..timefmt import relative
from ..wording import counted
from .common import EXIT_FAILED, EXIT_OK, CommandError, CommonOptions, Streams
from .export_all import export_all

StoreHandler = Callable[[argparse.Namespace, HistoryStore, Streams], int]
LIST_LIMIT = 50


def _histories(args: argparse.Namespace, streams: Streams) -> tuple[HistoryStore, Path, bool]:
    """The history the common options point at, opened; where the other one is (the demo's, or
    StackSpot's from the demo); and whether the first is the demo's."""
    common = CommonOptions.from_args(args)
    settings = common.settings(streams)
    return open_store(settings, demo=common.demo), history_root(settings, demo=not common.demo), common.demo


def _on_history(handler: StoreHandler) -> Callable[[argparse.Namespace, Streams], int]:
    """A command that works on the history the common options point at."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, streams: Streams) -> int:
        store, other, demo = _histories(args, streams)
        try:
            return handler(args, store, streams)
        except UnknownConversationError as exc:
            # An id from the demo's history given without --demo (or the other way round).
            if len(exc.text) < 3 or not HistoryStore.holds_conversations(other, exc.text):
                raise
            where = "StackSpot's history has it: leave out --demo" if demo else "the demo's has it: add --demo"
            raise CommandError(f"{exc}; {where}") from None

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("conversations", parents=[common], help="list conversations, newest first")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--archived", action="store_true", help="only archived conversations")
    group.add_argument("--all", action="store_true", help="archived and active")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.add_argument(
        "--limit", type=int, default=LIST_LIMIT, help=f"at most this many, newest first (default {LIST_LIMIT}; 0: all)"
    )
    p.set_defaults(handler=_conversations)

    p = sub.add_parser("show", parents=[common], help="print a conversation")
    p.add_argument("id", metavar="ID", help="local conversation id or unique prefix")
    p.add_argument("--json", action="store_true", help="the JSON export document")
    p.set_defaults(handler=_on_history(_show))

    p = sub.add_parser(
        "search",
        parents=[common],
        help="search prompts and answers of every conversation",
        description=(
            "Turns holding every word of TEXT, best and newest first. word* matches words starting so; "
            '"two words" (or two-words) the words in that order. Case and accents do not matter. When no turn '
            "holds the words, TEXT is searched as plain text (arse finds parser)."
        ),
    )
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_on_history(_search))

    names = list(export.FORMATS)
    formats = f"{', '.join(names[:-1])} or {names[-1]}"
    p = sub.add_parser("export", parents=[common], help=f"export conversations as {formats}")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("id", metavar="ID", nargs="?", help="local conversation id or unique prefix")
    target.add_argument("--all", action="store_true", help="every conversation (needs -o DIR)")
    p.add_argument("--format", "-f", choices=names, default="md")
    p.add_argument("-o", "--output", metavar="PATH", help="file (or directory with --all); default stdout")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(handler=_on_history(_export))

    p = sub.add_parser("import", parents=[common], help="restore a conversation from a JSON export")
    p.add_argument("file", metavar="FILE", help="a file written by `export --format json` ('-' for stdin)")
    p.set_defaults(handler=_on_history(_import))

    p = sub.add_parser("rename", parents=[common], help="give a conversation a title")
    p.add_argument("id", metavar="ID")
    p.add_argument("title", metavar="TITLE")
    p.set_defaults(handler=_on_history(_rename))

    p = sub.add_parser("archive", parents=[common], help="hide a conversation from the list")
    p.add_argument("id", metavar="ID")
    p.set_defaults(handler=_on_history(_archive), archived=True)
    p = sub.add_parser("unarchive", parents=[common], help="bring an archived conversation back")
    p.add_argument("id", metavar="ID")
    p.set_defaults(handler=_on_history(_archive), archived=False)

    p = sub.add_parser("repair", parents=[common], help="move damaged history files aside and rebuild the index")
    p.set_defaults(handler=_repair)

    p = sub.add_parser("delete", parents=[common], help="delete a conversation, or one of its turns")
    p.add_argument("id", metavar="ID")
    p.add_argument("--turn", type=int, metavar="N", help="delete only turn N (1-based, as `show` numbers them)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=_on_history(_delete))


def _conversation(store: HistoryStore, text: str) -> Conversation:
    return store.get_conversation(store.resolve_id(text))


def _conversations(args: argparse.Namespace, streams: Streams) -> int:
    archived = None if args.all else args.archived
    if args.limit < 0:
        raise CommandError("--limit must be 0 (all) or more")
    store, other, demo = _histories(args, streams)
    limit = args.limit or None
    conversations = store.list_conversations(archived=archived, limit=limit)
    if limit is not None and len(conversations) == limit:
        total = store.count_conversations(archived=archived)
        if total > limit:
            print(f"the newest {limit} of {total:,} conversations; --limit N shows more (0: all)", file=streams.stderr)
    if args.json:
        print(visible_json([c.to_dict() for c in conversations], indent=2), file=streams.stdout)
        return EXIT_OK
    if not conversations:
        print(_none_listed(store, archived, other, demo), file=streams.stderr)
        return EXIT_OK
    for c in conversations:
        mark = " [archived]" if c.archived else ""
        title = one_line(c.title or "(untitled)", 60)
        print(
            f"{c.id}  {relative(c.updated_at):>10}  {counted(c.turn_count, 'turn'):>10}  {one_line(c.target, 40):<20}  "
            f"{title}{mark}",
            file=streams.stdout,
        )
    return EXIT_OK


def _none_listed(store: HistoryStore, archived: bool | None, other: Path, demo: bool) -> str:
    """Why the list is empty, and where the conversations are when they are elsewhere: the
    archived ones, or the other history (someone who tried the demo first looks for its
    conversations without --demo)."""
    if archived is not None and (total := store.count_conversations(archived=None)):
        if archived:
            return "no archived conversations"
        return f"no active conversations; {total:,} archived (--archived lists them)"
    kind = "demo conversations" if demo else "conversations"
    if HistoryStore.holds_conversations(other):
        where = (
            "StackSpot's: `stackspot-tui conversations`" if demo else "the demo's: `stackspot-tui --demo conversations`"
        )
        return f"no {kind} yet; {where}"
    return f"no {kind} yet"


def _show(args: argparse.Namespace, store: HistoryStore, streams: Streams) -> int:
    conversation = _conversation(store, args.id)
    for piece in export.chunks("json" if args.json else "txt", conversation, store.iter_turns(conversation)):
        streams.stdout.write(piece)
    return EXIT_OK


def _search(args: argparse.Namespace, store: HistoryStore, streams: Streams) -> int:
    if not args.text.strip():
        raise CommandError("search text is empty")
    hits = store.search(args.text, limit=args.limit)
    if hits and hits[0].match == "text":
        print(f"no turn holds the words of {args.text!r}; turns holding it as text:", file=streams.stderr)
    if args.json:
        rows = [
            {
                "conversation": h.conversation.id,
                "title": h.conversation.title,
                "turn": h.seq + 1,
                "field": h.field,
                "snippet": h.snippet,
                "match": h.match,
            }
            for h in hits
        ]
        print(visible_json(rows, indent=2), file=streams.stdout)
    else:
        for h in hits:
            print(
                f"{h.conversation.id}  turn {h.seq + 1:<3} {h.field:<6}  {one_line(h.snippet, 100)}",
                file=streams.stdout,
            )
    if not hits:
        print(f"no match for {args.text!r}", file=streams.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _export(args: argparse.Namespace, store: HistoryStore, streams: Streams) -> int:
    if args.all:
        if not args.output:
            raise CommandError("export --all writes one file per conversation: give -o DIRECTORY")
        directory = Path(args.output)
        export.make_directory(directory)
        count = export_all(store, args.format, directory, args.force)
        print(f"exported {counted(count, 'conversation')} to {directory}", file=streams.stderr)
        return EXIT_OK
    conversation = _conversation(store, args.id)
    pieces = export.chunks(args.format, conversation, store.iter_turns(conversation))
    if args.output in (None, "-"):
        for piece in pieces:
            streams.stdout.write(piece)
    else:
        export.write_new_file(Path(args.output), pieces, force=args.force)
        print(f"exported {conversation.id} to {args.output}", file=streams.stderr)
    return EXIT_OK


def _import(args: argparse.Namespace, store: HistoryStore, streams: Streams) -> int:
    try:
        raw = streams.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        document = json.loads(raw)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CommandError(f"{args.file} is not a JSON file") from None
    try:
        conversation, turns = export.from_document(document)
    except export.ExportFormatError as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    imported = store.import_conversation(conversation, turns)
    note = "" if imported.id == conversation.id else f" (id {conversation.id} was taken)"
    print(imported.id, file=streams.stdout)
    print(f"imported {counted(len(turns), 'turn')} as conversation {imported.id}{note}", file=streams.stderr)
    return EXIT_OK


def _rename(args: argparse.Namespace, store: HistoryStore, streams: Streams) -> int:
    title = one_line(args.title, 200)
    if not title:
        raise CommandError("the title is empty")
    conversation = store.update_conversation(store.resolve_id(args.id), title=title)
    print(f"renamed {conversation.id} to {title!r}", file=streams.stderr)
    return EXIT_OK


def _archive(args: argparse.Namespace, store: HistoryStore, streams: Streams) -> int:
    conversation = store.update_conversation(store.resolve_id(args.id), archived=args.archived)
    print(f"{'archived' if args.archived else 'unarchived'} {conversation.id}", file=streams.stderr)
    return EXIT_OK


def _confirm(question: str, streams: Streams) -> bool:
    if not streams.stdin.isatty():
        raise CommandError(f"{question}: no terminal to confirm on; pass --yes")
    print(f"{question} [y/N] ", end="", file=streams.stderr, flush=True)
    return streams.stdin.readline().strip().lower() in ("y", "yes")


def _delete(args: argparse.Namespace, store: HistoryStore, streams: Streams) -> int:
    conversation = _conversation(store, args.id)
    if args.turn is not None:
        seq = args.turn - 1
        store.get_turn(conversation.id, seq)  # unknown turn: clear error before asking
        if not args.yes and not _confirm(f"delete turn {args.turn} of {conversation.id}", streams):
            print("not deleted", file=streams.stderr)
            return EXIT_FAILED
        store.delete_turn(conversation.id, seq)
        print(f"deleted turn {args.turn} of {conversation.id}", file=streams.stderr)
        return EXIT_OK
    question = (
        f"delete conversation {conversation.id} ({counted(conversation.turn_count, 'turn')}, "
        f"{one_line(conversation.title, 40)!r})"
    )
    if not args.yes and not _confirm(question, streams):
        print("not deleted", file=streams.stderr)
        return EXIT_FAILED
    store.delete_conversation(conversation.id)
    print(f"deleted {conversation.id}", file=streams.stderr)
    return EXIT_OK


def _repair(args: argparse.Namespace, streams: Streams) -> int:
    """Works on a history too damaged to open, so it does not go through `_on_history`."""
    common = CommonOptions.from_args(args)
    root = history_root(common.settings(streams), demo=common.demo)
    report = HistoryStore(root, check=False).repair()
    for line in report.actions:
        print(line, file=streams.stderr)
    for line in report.problems:
        print(f"stackspot-tui: error: {one_line(line, 500)}", file=streams.stderr)
    done = f"{counted(len(report.actions), 'repair')} done" if report.actions else "nothing to repair"
    left = f", {counted(len(report.problems), 'problem')} left" if report.problems else ""
    print(f"history at {root}: {done}{left}", file=streams.stderr)
    return EXIT_FAILED if report.problems else EXIT_OK
