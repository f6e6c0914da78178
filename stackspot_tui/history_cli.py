"""History commands: conversations, show, search, export, import, resume, rename, archive, delete."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from . import export
from .store import HistoryStore
from .store.models import Conversation
from .textsafe import one_line
from .timefmt import relative


class CommandError(Exception):
    """A history command cannot do what was asked; the message says why."""


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("conversations", parents=[common], help="list conversations, newest first")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--archived", action="store_true", help="only archived conversations")
    group.add_argument("--all", action="store_true", help="archived and active")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.add_argument("--limit", type=int, default=None, help="at most this many")

    p = sub.add_parser("show", parents=[common], help="print a conversation")
    p.add_argument("id", metavar="ID", help="local conversation id or unique prefix")
    p.add_argument("--json", action="store_true", help="the JSON export document")

    p = sub.add_parser("search", parents=[common], help="search prompts and answers of every conversation")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser("export", parents=[common], help="export conversations as md, json, html or txt")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("id", metavar="ID", nargs="?", help="local conversation id or unique prefix")
    target.add_argument("--all", action="store_true", help="every conversation (needs -o DIR)")
    p.add_argument("--format", "-f", choices=export.FORMATS, default="md")
    p.add_argument("-o", "--output", metavar="PATH", help="file (or directory with --all); default stdout")
    p.add_argument("--force", action="store_true", help="overwrite existing files")

    p = sub.add_parser("import", parents=[common], help="restore a conversation from a JSON export")
    p.add_argument("file", metavar="FILE", help="a file written by `export --format json` ('-' for stdin)")

    p = sub.add_parser("resume", parents=[common], help="re-attach executions left running and print their results")
    target = p.add_mutually_exclusive_group()
    target.add_argument("id", metavar="ID", nargs="?", help="only this conversation")
    target.add_argument("--all", action="store_true", help="every conversation (the default)")
    p.add_argument("--json", action="store_true", help="one JSON object per resumed turn")

    p = sub.add_parser("rename", parents=[common], help="give a conversation a title")
    p.add_argument("id", metavar="ID")
    p.add_argument("title", metavar="TITLE")

    for name, text in (
        ("archive", "hide a conversation from the list"),
        ("unarchive", "bring an archived conversation back"),
    ):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("id", metavar="ID")

    sub.add_parser("repair", parents=[common], help="move damaged history files aside and rebuild the index")

    p = sub.add_parser("delete", parents=[common], help="delete a conversation, or one of its turns")
    p.add_argument("id", metavar="ID")
    p.add_argument("--turn", type=int, metavar="N", help="delete only turn N (1-based, as `show` numbers them)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


HISTORY_COMMANDS = {"conversations", "show", "search", "export", "import", "rename", "archive", "unarchive", "delete"}


def run_history_command(args: argparse.Namespace, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    handler = globals()[f"_cmd_{args.command}"]
    return handler(args, store, stdout, stderr)


def _conversation(store: HistoryStore, text: str) -> Conversation:
    return store.get_conversation(store.resolve_id(text))


def _cmd_conversations(args, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    archived = None if args.all else args.archived
    conversations = store.list_conversations(archived=archived, limit=args.limit)
    if args.json:
        print(json.dumps([c.to_dict() for c in conversations], ensure_ascii=False, indent=2), file=stdout)
        return 0
    if not conversations:
        print("no conversations yet", file=stderr)
        return 0
    for c in conversations:
        mark = " [archived]" if c.archived else ""
        title = one_line(c.title or "(untitled)", 60)
        print(
            f"{c.id}  {relative(c.updated_at):>10}  {c.turn_count:>4} turns  {c.slug:<20}  {title}{mark}", file=stdout
        )
    return 0


def _cmd_show(args, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    conversation = _conversation(store, args.id)
    renderer = export.to_json if args.json else export.to_text
    stdout.write(renderer(conversation, store.turns(conversation.id)))
    return 0


def _cmd_search(args, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    if not args.text.strip():
        raise CommandError("search text is empty")
    hits = store.search(args.text, limit=args.limit)
    if args.json:
        rows = [
            {
                "conversation": h.conversation.id,
                "title": h.conversation.title,
                "turn": h.seq + 1,
                "field": h.field,
                "snippet": h.snippet,
            }
            for h in hits
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2), file=stdout)
    else:
        for h in hits:
            print(f"{h.conversation.id}  turn {h.seq + 1:<3} {h.field:<6}  {one_line(h.snippet, 100)}", file=stdout)
    if not hits:
        print(f"no match for {args.text!r}", file=stderr)
        return 1
    return 0


def _write(path: Path, text: str, force: bool) -> None:
    try:
        export.write_new_file(path, text, force=force)
    except export.ExportWriteError as exc:
        raise CommandError(str(exc)) from None


def _cmd_export(args, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    if args.all:
        if not args.output:
            raise CommandError("export --all writes one file per conversation: give -o DIRECTORY")
        directory = Path(args.output)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create {directory}: {exc.strerror}") from None
        conversations = store.list_conversations(archived=None)
        for c in conversations:
            _write(directory / f"{c.id}.{args.format}", export.render(args.format, c, store.turns(c.id)), args.force)
        print(f"exported {len(conversations)} conversation(s) to {directory}", file=stderr)
        return 0
    conversation = _conversation(store, args.id)
    text = export.render(args.format, conversation, store.turns(conversation.id))
    if args.output in (None, "-"):
        stdout.write(text)
    else:
        _write(Path(args.output), text, args.force)
        print(f"exported {conversation.id} to {args.output}", file=stderr)
    return 0


def _cmd_import(args, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    try:
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
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
    print(imported.id, file=stdout)
    print(f"imported {len(turns)} turn(s) as conversation {imported.id}{note}", file=stderr)
    return 0


def _cmd_rename(args, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    title = one_line(args.title, 200)
    if not title:
        raise CommandError("the title is empty")
    conversation = store.update_conversation(store.resolve_id(args.id), title=title)
    print(f"renamed {conversation.id} to {title!r}", file=stderr)
    return 0


def _set_archived(args, store: HistoryStore, stderr: TextIO, archived: bool) -> int:
    conversation = store.update_conversation(store.resolve_id(args.id), archived=archived)
    print(f"{'archived' if archived else 'unarchived'} {conversation.id}", file=stderr)
    return 0


def _cmd_archive(args, store, stdout, stderr) -> int:
    return _set_archived(args, store, stderr, True)


def _cmd_unarchive(args, store, stdout, stderr) -> int:
    return _set_archived(args, store, stderr, False)


def _confirm(question: str, stderr: TextIO) -> bool:
    if not sys.stdin.isatty():
        raise CommandError(f"{question}: no terminal to confirm on; pass --yes")
    print(f"{question} [y/N] ", end="", file=stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _cmd_delete(args, store: HistoryStore, stdout: TextIO, stderr: TextIO) -> int:
    conversation = _conversation(store, args.id)
    if args.turn is not None:
        seq = args.turn - 1
        store.get_turn(conversation.id, seq)  # unknown turn: clear error before asking
        if not args.yes and not _confirm(f"delete turn {args.turn} of {conversation.id}", stderr):
            print("not deleted", file=stderr)
            return 1
        store.delete_turn(conversation.id, seq)
        print(f"deleted turn {args.turn} of {conversation.id}", file=stderr)
        return 0
    question = (
        f"delete conversation {conversation.id} ({conversation.turn_count} turns, {one_line(conversation.title, 40)!r})"
    )
    if not args.yes and not _confirm(question, stderr):
        print("not deleted", file=stderr)
        return 1
    store.delete_conversation(conversation.id)
    print(f"deleted {conversation.id}", file=stderr)
    return 0


def run_repair(root: Path, stderr: TextIO) -> int:
    actions = HistoryStore(root, check=False).repair()
    for line in actions:
        print(line, file=stderr)
    print(f"history at {root}: {f'{len(actions)} repair(s) done' if actions else 'nothing to repair'}", file=stderr)
    return 0
