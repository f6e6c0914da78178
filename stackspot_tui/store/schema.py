"""The shape of every history file, checked on each read (docs/history-layout.md, "Record schema").

A check answers what is wrong with a value in a few words, or None when it is fine. Files are
checked whole when read; `repair` checks record by record to keep the good ones of a bad file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

PAGE_SIZE = 100
INDEX_TABLE = "conversations"
TURNS_TABLE = "turns"
HEX = frozenset("0123456789abcdef")

Check = Callable[[Any], str | None]
Record = dict[str, Any]  # one TinyDB document
Records = dict[str, Record]  # a TinyDB table: document id -> document


def _string(value: Any) -> str | None:
    return None if type(value) is str else "must be a string"


def _optional_string(value: Any) -> str | None:
    return None if value is None or type(value) is str else "must be a string or null"


def _timestamp(value: Any) -> str | None:
    if type(value) is not str:
        return "must be an ISO 8601 timestamp string"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return "must be an ISO 8601 timestamp"
    return None


def _optional_timestamp(value: Any) -> str | None:
    return None if value is None else _timestamp(value)


def _count(value: Any) -> str | None:
    return None if type(value) is int and value >= 0 else "must be a whole number ≥ 0"


def _flag(value: Any) -> str | None:
    return None if type(value) is bool else "must be true or false"


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _fraction(value: Any) -> str | None:
    return None if value is None or (_number(value) and 0 <= value <= 1) else "must be a number from 0 to 1, or null"


def _seconds(value: Any) -> str | None:
    return None if value is None or (_number(value) and value >= 0) else "must be a number ≥ 0, or null"


def _optional_count(value: Any) -> str | None:
    return None if value is None else _count(value)


def _text_or_object(value: Any) -> str | None:
    return None if type(value) in (str, dict) else "must be a string or an object"


def _any_json(value: Any) -> str | None:
    return None


def _strings(value: Any) -> str | None:
    if type(value) is not list or not all(type(v) is str for v in value):
        return "must be a list of strings"
    return None


def _counts(value: Any) -> str | None:
    if type(value) is not list or not all(type(v) is int and v >= 0 for v in value):
        return "must be a list of whole numbers ≥ 0"
    return None


def _token_counts(value: Any) -> str | None:
    if value is None or (type(value) is dict and all(type(n) is int and n >= 0 for n in value.values())):
        return None
    return "must map names to whole numbers ≥ 0, or be null"


def _steps(value: Any) -> str | None:
    if type(value) is not list:
        return "must be a list of steps"
    for index, step in enumerate(value):
        problem = record_problem(step, STEP_FIELDS) if type(step) is dict else "is not an object"
        if problem:
            return f"step {index + 1} {problem}"
    return None


# field -> (check, required). Optional fields take the model's default when absent.
CONVERSATION_FIELDS: dict[str, tuple[Check, bool]] = {
    "id": (_string, True),
    "slug": (_string, True),
    "title": (_string, False),
    "conversation_id": (_optional_string, False),
    "created_at": (_timestamp, True),
    "updated_at": (_timestamp, True),
    "turn_count": (_count, True),
    "next_seq": (_count, True),
    "archived": (_flag, False),
    "pending": (_counts, False),
    "agent_id": (_optional_string, False),
}

TURN_FIELDS: dict[str, tuple[Check, bool]] = {
    "conversation": (_string, True),
    "seq": (_count, True),
    "prompt": (_string, True),
    "input_data": (_text_or_object, True),
    "slug": (_optional_string, False),
    "status": (_string, True),
    "execution_id": (_optional_string, False),
    "conversation_id": (_optional_string, False),
    "percentage": (_fraction, False),
    "steps": (_steps, False),
    "result": (_any_json, False),
    "error": (_optional_string, False),
    "error_kind": (_optional_string, False),
    "created_at": (_timestamp, True),
    "sent_at": (_optional_timestamp, False),
    "finished_at": (_optional_timestamp, False),
    "duration": (_seconds, False),
    "agent_id": (_optional_string, False),
    "stop_reason": (_optional_string, False),
    "message_id": (_optional_string, False),
    "tokens": (_token_counts, False),
    "sources": (_strings, False),
    "incomplete": (_flag, False),
}

STEP_FIELDS: dict[str, tuple[Check, bool]] = {
    "name": (_string, True),
    "order": (_optional_count, False),
    "type": (_optional_string, False),
    "done": (_flag, False),
    "sources": (_strings, False),
    "status_code": (_optional_count, False),
    "preview": (_optional_string, False),
    "error": (_optional_string, False),
}


def record_problem(record: Record, fields: dict[str, tuple[Check, bool]]) -> str | None:
    """What is wrong with one record (unknown keys are allowed and ignored), or None."""
    for name, (check, required) in fields.items():
        if name not in record:
            if required:
                return f"lacks '{name}'"
            continue
        problem = check(record[name])
        if problem:
            return f"'{name}' {problem} (found {_shown(record[name])})"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def is_id(text: object) -> bool:
    return type(text) is str and len(text) == 8 and set(text) <= HEX


def doc_id(conv_id: str) -> int:
    return int(conv_id, 16) + 1  # TinyDB ids start at 1


# Fast paths for the common case, a sound record: a list of 10,000 conversations checks them
# all on each first read, so they are written out as one expression rather than the generic
# loop (which stays the reference, names what is wrong, and is what a test holds them to).
# A missing required field is a KeyError (not sound); unknown fields are ignored, as there.
_iso = datetime.fromisoformat


def _sound_conversation(key: str, r: Record, shard: str) -> bool:
    try:
        conv_id, next_seq, count = r["id"], r["next_seq"], r["turn_count"]
        cid, agent, pending = r.get("conversation_id"), r.get("agent_id"), r.get("pending", ())
        return (
            type(conv_id) is str
            and len(conv_id) == 8
            and conv_id[0] == shard
            and HEX.issuperset(conv_id)
            and key == str(int(conv_id, 16) + 1)
            and type(r["slug"]) is str
            and type(r.get("title", "")) is str
            and (cid is None or type(cid) is str)
            and (agent is None or type(agent) is str)
            and type(next_seq) is int
            and type(count) is int
            and 0 <= count <= next_seq
            and type(r.get("archived", False)) is bool
            and type(pending) in (list, tuple)
            and (not pending or all(type(seq) is int and 0 <= seq < next_seq for seq in pending))
            and type(r["created_at"]) is str
            and type(r["updated_at"]) is str
            and bool(_iso(r["created_at"]))
            and bool(_iso(r["updated_at"]))
        )
    except (KeyError, TypeError, ValueError):
        return False


def _sound_step(s: Record) -> bool:
    order, code, sources = s.get("order"), s.get("status_code"), s.get("sources", ())
    return (
        type(s["name"]) is str
        and (order is None or (type(order) is int and order >= 0))
        and (code is None or (type(code) is int and code >= 0))
        and type(s.get("type")) in _TEXT_OR_NULL
        and type(s.get("preview")) in _TEXT_OR_NULL
        and type(s.get("error")) in _TEXT_OR_NULL
        and type(s.get("done", False)) is bool
        and type(sources) in _LIST
        and (not sources or all(type(source) is str for source in sources))
    )


def _sound_turn(key: str, r: Record, conv_id: str, page: int) -> bool:
    try:
        get = r.get
        seq, pct, took, tokens = r["seq"], get("percentage"), get("duration"), get("tokens")
        steps, sources, sent, finished = get("steps", ()), get("sources", ()), get("sent_at"), get("finished_at")
        return (
            type(seq) is int
            and seq >= 0
            and seq // PAGE_SIZE == page
            and key == str(seq + 1)
            and type(r["conversation"]) is str
            and r["conversation"] == conv_id
            and type(r["prompt"]) is str
            and type(r["input_data"]) in _TEXT_OR_OBJECT
            and type(r["status"]) is str
            and type(get("slug")) in _TEXT_OR_NULL
            and type(get("execution_id")) in _TEXT_OR_NULL
            and type(get("conversation_id")) in _TEXT_OR_NULL
            and type(get("error")) in _TEXT_OR_NULL
            and type(get("error_kind")) in _TEXT_OR_NULL
            and type(get("agent_id")) in _TEXT_OR_NULL
            and type(get("stop_reason")) in _TEXT_OR_NULL
            and type(get("message_id")) in _TEXT_OR_NULL
            and (pct is None or (type(pct) in _NUMBER and 0 <= pct <= 1))
            and (took is None or (type(took) in _NUMBER and 0 <= took < math.inf))
            and type(steps) in _LIST
            and (not steps or all(type(step) is dict and _sound_step(step) for step in steps))
            and type(sources) in _LIST
            and (not sources or all(type(source) is str for source in sources))
            and (tokens is None or (type(tokens) is dict and all(type(n) is int and n >= 0 for n in tokens.values())))
            and type(get("incomplete", False)) is bool
            and type(r["created_at"]) is str
            and bool(_iso(r["created_at"]))
            and (sent is None or (type(sent) is str and bool(_iso(sent))))
            and (finished is None or (type(finished) is str and bool(_iso(finished))))
        )
    except (KeyError, TypeError, ValueError):
        return False


_TEXT_OR_NULL = (str, type(None))
_TEXT_OR_OBJECT = (str, dict)
_NUMBER = (int, float)
_LIST = (list, tuple)


def conversation_problem(key: str, record: Any, shard: str) -> str | None:
    """One index record, stored under TinyDB id ``key`` in shard file ``<shard>.json``."""
    if type(record) is dict and _sound_conversation(key, record, shard):
        return None
    return _conversation_problem(key, record, shard)


def _conversation_problem(key: str, record: Any, shard: str) -> str | None:
    if type(record) is not dict:
        return f"record {key} is not an object"
    name = f"conversation {record['id']}" if is_id(record.get("id")) else f"record {key}"
    problem = record_problem(record, CONVERSATION_FIELDS)
    if problem:
        return f"{name}: {problem}"
    conv_id = record["id"]
    if not is_id(conv_id):
        return f"{name}: 'id' must be 8 hex digits (found {_shown(conv_id)})"
    if key != str(doc_id(conv_id)) or conv_id[0] != shard:
        return f"{name} is filed under the wrong key or shard"
    if record["turn_count"] > record["next_seq"]:
        return f"{name} counts more turns ({record['turn_count']}) than it has seqs ({record['next_seq']})"
    if any(seq >= record["next_seq"] for seq in record.get("pending", ())):
        return f"{name} has a pending turn beyond its last seq"
    return None


def turn_problem(key: str, record: Any, conv_id: str, page: int) -> str | None:
    """One turn record, stored under TinyDB id ``key`` (seq + 1, the turn's number) in page ``page``."""
    if type(record) is dict and _sound_turn(key, record, conv_id, page):
        return None
    return _turn_problem(key, record, conv_id, page)


def _turn_problem(key: str, record: Any, conv_id: str, page: int) -> str | None:
    name = f"turn {key}" if key.isdigit() else f"record {key!r}"
    if type(record) is not dict:
        return f"{name} is not an object"
    problem = record_problem(record, TURN_FIELDS)
    if problem:
        return f"{name}: {problem}"
    seq = record["seq"]
    if record["conversation"] != conv_id:
        return f"{name} belongs to conversation {_shown(record['conversation'])}"
    if key != str(seq + 1) or seq // PAGE_SIZE != page:
        return f"{name} (seq {seq}) is filed under the wrong key or page"
    return None


def meta_problem(data: Any) -> str | None:
    if type(data) is not dict:
        return "not a JSON object"
    version = data.get("schema_version")
    if type(version) is not int or version < 1:
        return f"'schema_version' must be a whole number ≥ 1 (found {_shown(version)})"
    return None


def table_problem(data: Any, table: str) -> str | None:
    """The file-level shape of a TinyDB file holding one table."""
    if type(data) is not dict:
        return "not a TinyDB document (a JSON object expected)"
    if set(data) != {table}:
        return f"holds tables {sorted(data)}, expected just {table!r}"
    if type(data[table]) is not dict:
        return f"table {table!r} is not a set of records"
    return None


def index_file_problem(shard: str, data: Any) -> str | None:
    """A whole index shard ``<shard>.json``."""
    problem = table_problem(data, INDEX_TABLE)
    if problem:
        return problem
    for key, record in data[INDEX_TABLE].items():
        problem = conversation_problem(key, record, shard)
        if problem:
            return problem
    return None


def page_file_problem(conv_id: str, page: int, data: Any) -> str | None:
    """A whole page of turns ``conversations/<conv_id>/<page>.json``."""
    problem = table_problem(data, TURNS_TABLE)
    if problem:
        return problem
    for key, record in data[TURNS_TABLE].items():
        problem = turn_problem(key, record, conv_id, page)
        if problem:
            return problem
    return None


def record_file_problem(conv_id: str, data: Any) -> str | None:
    """A conversation's own record ``conversations/<conv_id>/conversation.json``: one record, its own."""
    problem = table_problem(data, INDEX_TABLE)
    if problem:
        return problem
    records = data[INDEX_TABLE]
    key = str(doc_id(conv_id))
    if set(records) != {key}:
        return f"holds records {sorted(records)[:3]}, expected just conversation {conv_id} (record {key})"
    return conversation_problem(key, records[key], conv_id[0])
