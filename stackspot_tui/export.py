"""Transcripts out and back in: Markdown, JSON (round-trips), self-contained HTML, plain text.

Exports hold only what the history holds; credentials are never in the history, so they
can never reach an export. Each format is written a turn at a time (`ExportFormat.chunks`),
so exporting a long conversation, or every conversation, never holds it all in memory.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

import orjson

from .api.models import result_to_text
from .atomicfile import make_private_dirs, write_atomic_chunks
from .fences import code_fence
from .store.models import Conversation, StepSummary, Turn
from .textsafe import visible, visible_json, visible_json_text

FORMAT_NAME = "stackspot-tui.conversation"
FORMAT_VERSION = 1

Renderer = Callable[[Conversation, Iterable[Turn]], Iterator[str]]


@dataclass(frozen=True)
class ExportFormat:
    name: str  # the --format value and the file extension
    title: str  # how the app's command palette names it
    chunks: Renderer  # the export a piece at a time: the head, then one piece per turn, then the tail

    def render(self, conversation: Conversation, turns: Iterable[Turn]) -> str:
        return "".join(self.chunks(conversation, turns))


#: every export format, in the order the CLI and the app offer them; `@_export_format` fills it
FORMATS: dict[str, ExportFormat] = {}


def _export_format(name: str, title: str) -> Callable[[Renderer], Renderer]:
    """Register a renderer: a new format is one decorated generator in this module."""

    def register(chunks: Renderer) -> Renderer:
        FORMATS[name] = ExportFormat(name, title, chunks)
        return chunks

    return register


def _trimmed(pieces: Iterable[str]) -> Iterator[str]:
    """The pieces with the whitespace at the very end replaced by one newline, as they come:
    trailing whitespace is held back until more text shows it was not the end."""
    held = ""
    for piece in pieces:
        body = piece.rstrip()
        if body:
            yield held + body
            held = piece[len(body) :]
        else:
            held += piece
    yield "\n"


class ExportWriteError(Exception):
    """The export file cannot be written; the message says why."""


class ExportFormatError(ValueError):
    """The file is not an export this version can read."""


def _clean(text: str) -> str:
    """Terminal escapes and other control characters are shown, never carried, in a transcript."""
    return visible(text)


def token_counts(tokens: dict[str, int] | None) -> str:
    """ "230 out · 15 in (user 12, enrichment 3)", from whichever counts the server gave."""
    if not tokens:
        return ""
    parts = [f"{tokens['output']} out"] if "output" in tokens else []
    if "input" in tokens:
        detail = ", ".join(f"{name} {tokens[name]}" for name in ("user", "enrichment") if name in tokens)
        parts.append(f"{tokens['input']} in" + (f" ({detail})" if detail else ""))
    return " · ".join(parts)


def _turn_facts(turn: Turn) -> list[str]:
    words = turn.status_words  # what the status means, when the status alone does not say
    facts = [f"status {turn.status}" + (f" — {words}" if turn.status not in words else "")]
    if turn.incomplete:
        facts.append("answer incomplete")
    if turn.execution_id:
        facts.append(f"execution {turn.execution_id}")
    if turn.stop_reason:
        facts.append(f"stop reason {turn.stop_reason}")
    if turn.tokens:
        facts.append("tokens " + token_counts(turn.tokens))
    if turn.duration is not None:
        facts.append(f"{turn.duration:g} s")
    facts.append(f"asked {turn.created_at}")
    if turn.finished_at:
        facts.append(f"finished {turn.finished_at}")
    return facts


def _sources(turn: Turn) -> list[str]:
    return [source for step in turn.steps for source in step.sources] + list(turn.sources)


def _steps_line(turn: Turn) -> str:
    """`fetch-ticket (API, HTTP 200: {"ticket": 42}), analyze (LLM)`."""
    return ", ".join(_step_part(s) for s in turn.steps)


def _step_part(step: StepSummary) -> str:
    facts = _step_facts(step)
    return step.name + (f" ({', '.join(facts)})" if facts else "")


def _step_facts(step: StepSummary) -> list[str]:
    facts = [step.type] if step.type else []
    if step.status_code is not None:
        facts.append(f"HTTP {step.status_code}" + (f": {step.preview}" if step.preview else ""))
    if step.error and step.status_code is None:
        facts.append(f"failed: {step.error}")
    return facts


def _header_facts(conversation: Conversation) -> list[tuple[str, str]]:
    return [
        ("Agent", conversation.agent_id) if conversation.agent_id else ("Quick command", conversation.slug),
        ("StackSpot conversation", conversation.conversation_id or "(none yet)"),
        ("Local id", conversation.id),
        ("Created", conversation.created_at),
        ("Updated", conversation.updated_at),
    ]


def _answer(turn: Turn) -> str:
    return _clean(result_to_text(turn.result))


# -- Markdown -------------------------------------------------------------------------------


@_export_format("md", "Markdown")
def markdown_chunks(conversation: Conversation, turns: Iterable[Turn]) -> Iterator[str]:
    return _trimmed(_markdown_pieces(conversation, turns))


def _markdown_pieces(conversation: Conversation, turns: Iterable[Turn]) -> Iterator[str]:
    head = [f"# {_clean(conversation.title) or 'Conversation'}", ""]
    head += [f"- **{name}:** `{value}`" for name, value in _header_facts(conversation)]
    yield "\n".join(head)
    for turn in turns:
        out = ["", f"## Turn {turn.seq + 1}", "", f"_{' · '.join(_turn_facts(turn))}_", ""]
        out += ["**Prompt**", "", code_fence(_clean(turn.prompt)), ""]
        if turn.steps:
            out += [f"**Steps:** {_clean(_steps_line(turn))}", ""]
        if turn.result is not None:
            out += ["**Answer**", "", _answer(turn), ""]
        if turn.error:
            out += [f"**Error:** {_clean(turn.error)}", ""]
        sources = _sources(turn)
        if sources:
            out += ["**Sources**", ""] + [f"- {_clean(s)}" for s in sources] + [""]
        yield "\n" + "\n".join(out)


def to_markdown(conversation: Conversation, turns: Iterable[Turn]) -> str:
    return "".join(markdown_chunks(conversation, turns))


# -- JSON -------------------------------------------------------------------------------------


def to_document(conversation: Conversation, turns: Iterable[Turn]) -> dict[str, Any]:
    meta = conversation.to_dict()
    meta.pop("pending", None)  # derived from the turns
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "conversation": meta,
        "turns": [turn.to_dict() for turn in turns],
    }


@_export_format("json", "JSON")
def json_chunks(conversation: Conversation, turns: Iterable[Turn]) -> Iterator[str]:
    """The document `to_document` makes, as `json.dumps(indent=2)` writes it, a turn at a time."""
    head = visible_json(to_document(conversation, []), indent=2)
    assert head.endswith('"turns": []\n}'), "the turns come last in the document"
    yield head[: -len("[]\n}")] + "["
    first = True
    for turn in turns:
        text = visible_json_text(_turn_json(turn))
        yield ("\n    " if first else ",\n    ") + text
        first = False
    yield "]\n}\n" if first else "\n  ]\n}\n"


def _turn_json(turn: Turn) -> str:
    """A turn as `_indented` writes it, inside the document's ``turns`` list. orjson writes the
    same bytes ~10 times faster for the common turn: text in and out, and floats (percentage,
    duration) it formats as Python does. Anything else, such as a JSON answer (whose floats,
    NaN or integers past 64 bits orjson writes differently or not at all), goes the slower way."""
    data = turn.to_dict()
    if (
        type(turn.input_data) is str
        and (turn.result is None or type(turn.result) is str)
        and all(
            type(value) is not float or orjson.dumps(value) == float.__repr__(value).encode()
            for value in (turn.percentage, turn.duration)
        )
    ):
        try:
            return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode().replace("\n", "\n    ")
        except orjson.JSONEncodeError:  # a lone surrogate, an integer past 64 bits
            pass
    return _indented(data, "\n    ")


_SCALARS: dict[Any, str] = {True: "true", False: "false", None: "null"}
_FLOATS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


def _dumps(value: Any) -> str:
    """A scalar as json.dumps(ensure_ascii=False) writes it; json.dumps with a non-default
    option makes a new encoder on every call, which costs more than the encoding."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _FLOATS.get(value, "NaN" if value != value else float.__repr__(value))
    if kind is bool or value is None:
        return _SCALARS[value]
    return json.dumps(value, ensure_ascii=False)


def _indented(value: Any, newline: str) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False)`` with every line break followed by
    ``newline``'s indent: with ``indent`` json.dumps runs its pure-Python encoder, several times
    slower than this, which leaves every scalar to the C one."""
    kind = type(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + "  "
        parts = []
        for key, item in value.items():
            if type(key) is not str:  # json writes such keys as text: leave the rare case to it
                return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", newline)
            shape = type(item)
            if shape is str:
                parts.append(encode_basestring(key) + ": " + encode_basestring(item))
            elif shape is dict or shape is list or shape is tuple:
                parts.append(encode_basestring(key) + ": " + _indented(item, inner))
            else:
                parts.append(encode_basestring(key) + ": " + _dumps(item))
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = newline + "  "
        return "[" + inner + ("," + inner).join([_indented(item, inner) for item in value]) + newline + "]"
    return _dumps(value)


def to_json(conversation: Conversation, turns: Iterable[Turn]) -> str:
    return "".join(json_chunks(conversation, turns))


def from_document(document: Any) -> tuple[Conversation, list[Turn]]:
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ExportFormatError('not a stackspot-tui conversation export (missing "format")')
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ExportFormatError(
            f"export format version {version!r} is newer than this stackspot-tui reads ({FORMAT_VERSION})"
        )
    meta, turns = document.get("conversation"), document.get("turns")
    if not isinstance(meta, dict) or not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise ExportFormatError("export has no conversation object or turns list")
    try:
        conversation = Conversation.from_dict(meta)
        parsed = [Turn.from_dict({**t, "conversation": conversation.id}) for t in turns]
    except TypeError as exc:
        raise ExportFormatError(f"export is missing fields: {exc}") from None
    if not isinstance(conversation.slug, str) or not all(isinstance(t.prompt, str) for t in parsed):
        raise ExportFormatError("export has fields of the wrong type")
    return conversation, parsed


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1f2328;background:#fff}
h1{font-size:1.6rem;margin-bottom:.3rem}dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;color:#57606a;font-size:.9rem}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;font-family:ui-monospace,monospace}
section.turn{border-top:1px solid #d0d7de;margin-top:1.5rem;padding-top:.5rem}
.meta{color:#57606a;font-size:.85rem}.prompt{background:#f6f8fa;border-left:4px solid #0969da;padding:.5rem 1rem;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.9rem}
.answer{padding:.2rem 0}.error{color:#cf222e;font-weight:600}
pre{background:#f6f8fa;padding:.8rem;overflow:auto;border-radius:6px}code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
.status-COMPLETED{color:#1a7f37}.status-FAILURE,.status-ERROR{color:#cf222e}
@media (prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}pre,.prompt{background:#161b22}}
"""


def _markdown_html(text: str) -> str:
    from .markdown import parser  # the app's: the export reads an answer as the screen does

    return parser().render(text)


@_export_format("html", "HTML")
def html_chunks(conversation: Conversation, turns: Iterable[Turn]) -> Iterator[str]:
    e = html.escape
    title = e(_clean(conversation.title) or "Conversation")
    facts = "".join(f"<dt>{e(n)}</dt><dd>{e(v)}</dd>" for n, v in _header_facts(conversation))
    yield (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f'<title>{title}</title><style>{_CSS}</style></head><body><h1>{title}</h1><dl class="facts">{facts}</dl>'
    )
    for turn in turns:
        parts = [
            f'<h2>Turn {turn.seq + 1} <span class="status-{e(turn.status)}">{e(turn.status)}</span></h2>',
            f'<p class="meta">{e(" · ".join(_turn_facts(turn)))}</p>',
            f'<div class="prompt">{e(_clean(turn.prompt))}</div>',
        ]
        if turn.steps:
            parts.append(f'<p class="meta">Steps: {e(_clean(_steps_line(turn)))}</p>')
        if turn.result is not None:
            parts.append(f'<div class="answer">{_markdown_html(_answer(turn))}</div>')
        if turn.error:
            parts.append(f'<p class="error">{e(_clean(turn.error))}</p>')
        sources = _sources(turn)
        if sources:
            parts.append("<p>Sources</p><ul>" + "".join(f"<li>{e(_clean(s))}</li>" for s in sources) + "</ul>")
        yield '<section class="turn">' + "".join(parts) + "</section>"
    yield "</body></html>\n"


def to_html(conversation: Conversation, turns: Iterable[Turn]) -> str:
    return "".join(html_chunks(conversation, turns))


# -- plain text -------------------------------------------------------------------------------


@_export_format("txt", "plain text")
def text_chunks(conversation: Conversation, turns: Iterable[Turn]) -> Iterator[str]:
    return _trimmed(_text_pieces(conversation, turns))


def _text_pieces(conversation: Conversation, turns: Iterable[Turn]) -> Iterator[str]:
    title = _clean(conversation.title) or "Conversation"
    head = [title, "=" * len(title)]
    head += [f"{name}: {value}" for name, value in _header_facts(conversation)]
    yield "\n".join(head)
    for turn in turns:
        heading = f"Turn {turn.seq + 1} ({', '.join(_turn_facts(turn))})"
        out = ["", heading, "-" * len(heading), "You:", _clean(turn.prompt), ""]
        if turn.steps:
            out.append(f"Steps: {_clean(_steps_line(turn))}")
        if turn.result is not None:
            out += ["StackSpot:", _answer(turn)]
        if turn.error:
            out.append(f"Error: {_clean(turn.error)}")
        for source in _sources(turn):
            out.append(f"Source: {_clean(source)}")
        yield "\n" + "\n".join(out)


def to_text(conversation: Conversation, turns: Iterable[Turn]) -> str:
    return "".join(text_chunks(conversation, turns))


def render(fmt: str, conversation: Conversation, turns: Iterable[Turn]) -> str:
    return FORMATS[fmt].render(conversation, turns)


def chunks(fmt: str, conversation: Conversation, turns: Iterable[Turn]) -> Iterator[str]:
    """The export a piece at a time, for a file or a stream written as the turns are read."""
    return FORMATS[fmt].chunks(conversation, turns)


def free_path(directory: Path, stem: str, fmt: str) -> Path:
    """`stem.fmt` in the directory, or the first of `stem-1.fmt`, `stem-2.fmt`… not taken yet."""
    path = directory / f"{stem}.{fmt}"
    counter = 1
    while path.exists():
        path = directory / f"{stem}-{counter}.{fmt}"
        counter += 1
    return path


def make_directory(directory: Path) -> None:
    """``directory`` and any missing parents, made private (0700) like the files written into
    them; a directory that exists keeps its mode: the user chose it."""
    try:
        make_private_dirs(directory)
    except OSError as exc:
        raise ExportWriteError(f"cannot create {directory}: {exc.strerror}") from None


def write_new_file(path: Path, text: str | Iterable[str], *, force: bool = False, durable: bool = True) -> None:
    """Write atomically, as the pieces come; refuse to replace an existing file unless forced.

    ``durable=False`` leaves the fsync to the caller (`atomicfile.sync_all` after many files)."""
    if path.is_dir():
        raise ExportWriteError(f"{path} is a directory")
    if path.exists() and not force:
        raise ExportWriteError(f"{path} exists; use --force to overwrite it")
    pieces = [text] if isinstance(text, str) else text
    try:
        write_atomic_chunks(path, (piece.encode("utf-8") for piece in pieces), durable=durable)
    except OSError as exc:
        raise ExportWriteError(f"cannot write {path}: {exc.strerror}") from None
