"""Search: what a query means, which turns match it, and in which order they come.

A query is words, all of which a turn must hold (in its prompt or its answer, in any order):
``word`` matches the whole word, ``pref*`` any word starting so, ``"two words"`` (or
``two-words``, ``file.name``) the words in that order. Case and accents do not matter.
The catalog's full-text index finds the matching turns, newest first; the newest
``CANDIDATES`` are ranked here by how well they match and how recent they are.

When no turn holds the words, the query is searched as plain text (a substring, as in an editor:
``arse`` finds "parser"): the index narrows the turns to those holding words that could form
the text, and a scan of their text confirms each one.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .catalog import Catalog

CANDIDATES = 200  # matching turns ranked per search, newest first (at least 4 × the limit)
SCAN_BATCH = 500  # turns read at a time when a scan confirms substring matches
SCAN_LIMIT = 200_000  # turns a substring search reads at most before it says what it found
HALF_LIFE_DAYS = 30.0  # a month-old match counts half as much as today's
SNIPPET_WIDTH = 80
MIN_PREFIX = 2  # `a*` would match half the vocabulary: one letter is a word, not a prefix

_WORD = re.compile(r"[^\W_]+")
_QUOTED = re.compile(r'"([^"]*)"?')


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    base = unicodedata.normalize("NFD", char)[0]
    return base if len(base) == 1 else char


def fold(text: str) -> str:
    """Lower case without accents, one character for one (so positions carry over to the text)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters lower-case to two ("İ"): keep positions
        lowered = "".join(c.lower()[0] for c in text)
    if lowered.isascii():
        return lowered
    return "".join(_fold_char(c) if not c.isascii() else c for c in lowered)


def result_text(result: Any) -> str:
    """The answer as the index and the scan see it: a string as it is, JSON as JSON text."""
    if result is None:
        return ""
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # folded
    prefix: bool = False  # the last word may continue

    @property
    def phrase(self) -> bool:
        return len(self.words) > 1


def parse(text: str, *, prefix_last: bool = False) -> list[Term]:
    """The terms of a query. ``prefix_last``: the last word is being typed (the app's search box)."""
    terms: list[Term] = []
    pos = 0
    for quoted in _QUOTED.finditer(text):
        terms += _bare_terms(text[pos : quoted.start()])
        words = tuple(_WORD.findall(fold(quoted.group(1))))
        if words:
            terms.append(Term(words))
        pos = quoted.end()
    tail = text[pos:]
    terms += _bare_terms(tail)
    if prefix_last and terms and tail.strip() and not text[-1].isspace() and not terms[-1].prefix:
        last = terms[-1]
        if len(last.words[-1]) >= MIN_PREFIX:
            terms[-1] = Term(last.words, prefix=True)
    return terms


def _bare_terms(text: str) -> list[Term]:
    terms = []
    for chunk in text.split():
        words = tuple(_WORD.findall(fold(chunk)))
        if words:
            prefix = chunk.endswith("*") and len(words[-1]) >= MIN_PREFIX and bool(_WORD.search(chunk[-2:-1] or " "))
            terms.append(Term(words, prefix=prefix))
    return terms


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def fts_query(terms: Sequence[Term], catalog: Catalog) -> str | None:
    """The FTS5 expression for the terms; None when one of them can match nothing."""
    parts = []
    for term in terms:
        if term.prefix and not term.phrase:
            expanded = catalog.terms_from(term.words[0])
            if expanded == []:
                return None
            parts.append(
                f"{_quoted(term.words[0])}*" if expanded is None else "(" + " OR ".join(map(_quoted, expanded)) + ")"
            )
        else:
            parts.append(_quoted(" ".join(term.words)) + ("*" if term.prefix else ""))
    return " AND ".join(parts)


class Matcher:
    """A query's terms as regular expressions over folded text: confirms, ranks, places snippets."""

    def __init__(self, terms: Sequence[Term], text: str = "") -> None:
        self.terms = list(terms)
        self.patterns = [re.compile(self._pattern(term)) for term in terms]
        words = _WORD.findall(fold(text)) if text and len(terms) > 1 else []
        self.whole = f" {' '.join(words)} " if words else ""  # the query verbatim, as words

    @staticmethod
    def _pattern(term: Term) -> str:
        body = r"[\W_]+".join(re.escape(word) for word in term.words)
        return r"(?<![^\W_])" + body + ("" if term.prefix else r"(?![^\W_])")

    def matches(self, prompt: str, answer: str) -> bool:
        return all(p.search(prompt) or p.search(answer) for p in self.patterns)

    def quality(self, prompt: str, answer: str) -> float:
        """Words in the prompt count twice; repeats count less and less; the whole query verbatim counts extra.

        The texts are split into words once (as the patterns see words: runs of letters and
        digits); a whole word is then counted on that list, a prefix or phrase by its pattern
        (a loop over every word for a prefix cost as much as the rest of a search)."""
        split = self.whole or any(not (term.phrase or term.prefix) for term in self.terms)
        prompt_words, answer_words = (_WORD.findall(prompt), _WORD.findall(answer)) if split else ([], [])
        score = 0.0
        for term, pattern in zip(self.terms, self.patterns, strict=True):
            if term.phrase or term.prefix:
                # A prefix's pattern matches at the start of a word only: one match per word starting so.
                in_prompt, in_answer = len(pattern.findall(prompt)), len(pattern.findall(answer))
            else:
                in_prompt, in_answer = prompt_words.count(term.words[0]), answer_words.count(term.words[0])
            score += 2 * in_prompt / (in_prompt + 1) + in_answer / (in_answer + 1)
        if self.whole:
            score += 1.5 * (self.whole in f" {' '.join(prompt_words)} ") + 0.75 * (
                self.whole in f" {' '.join(answer_words)} "
            )
        return score

    def first(self, text: str) -> tuple[int, int] | None:
        found = [m for m in (p.search(text) for p in self.patterns) if m]
        if not found:
            return None
        best = min(found, key=lambda m: m.start())
        return best.start(), best.end() - best.start()


def snippet(text: str, at: int, length: int, width: int = SNIPPET_WIDTH) -> str:
    start = max(0, at - (width - length) // 2)
    piece = " ".join(text[start : start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def freshness(key: int, now_micros: int) -> float:
    age_days = max(0, now_micros - (key >> 8)) / 86_400_000_000
    return 1 / (1 + age_days / HALF_LIFE_DAYS)


@dataclass(frozen=True)
class Found:
    conversation: str
    seq: int
    field: str  # "prompt" | "result"
    snippet: str
    score: float
    match: str  # "words" | "text"


# A turn to look at: (recency key, conversation, seq, prompt, answer)
Candidate = tuple[int, str, int, str, str]
Scanner = Callable[[set[str]], Iterable[Candidate]]


def search(
    catalog: Catalog,
    text: str,
    *,
    limit: int,
    dirty: set[str],
    scan_dirty: Scanner,
    prefix_last: bool = False,
    now: float | None = None,
) -> list[Found]:
    """Words first; text (a substring) when no turn holds the words. ``dirty`` conversations are
    taken from the files (``scan_dirty``), not from the catalog."""
    now_micros = int((time.time() if now is None else now) * 1_000_000)
    terms = parse(text, prefix_last=prefix_last)
    if terms:
        found = _word_search(catalog, terms, text, limit, dirty, scan_dirty, now_micros)
        if found:
            return found
    return _text_search(catalog, text, limit, dirty, scan_dirty)


def _word_search(
    catalog: Catalog,
    terms: list[Term],
    text: str,
    limit: int,
    dirty: set[str],
    scan_dirty: Scanner,
    now_micros: int,
) -> list[Found]:
    query = fts_query(terms, catalog)
    matcher = Matcher(terms, text)
    window = max(CANDIDATES, 4 * limit)
    candidates: list[Candidate] = []
    if query is not None:
        rows = catalog.matches(query, window)
        refs = catalog.turn_refs([key for key, _, _ in rows])
        for key, prompt, answer in rows:
            ref = refs.get(key)
            if ref is not None and ref[0] not in dirty:
                candidates.append((key, ref[0], ref[1], prompt, answer))
    if dirty:
        for candidate in scan_dirty(dirty):
            if matcher.matches(fold(candidate[3]), fold(candidate[4])):
                candidates.append(candidate)
    scored = sorted(
        (
            (
                matcher.quality(fold(prompt), fold(answer)) * (0.5 + freshness(key, now_micros)),
                conv_id,
                seq,
                prompt,
                answer,
            )
            for key, conv_id, seq, prompt, answer in candidates
        ),
        key=lambda item: item[0],
        reverse=True,
    )
    ranked = []
    for score, conv_id, seq, prompt, answer in scored[:limit]:  # snippets only for what is shown
        field, at = "prompt", matcher.first(fold(prompt))
        if at is None:
            field, at = "result", matcher.first(fold(answer))
        shown = prompt if field == "prompt" else answer
        start, length = at or (0, 0)
        ranked.append(Found(conv_id, seq, field, snippet(shown, start, length), score, "words"))
    return ranked


def _narrowing(catalog: Catalog, needle: str) -> str | None:
    """An FTS5 query every turn holding ``needle`` (folded) matches, or None when none narrows it.

    The words inside the text must be there whole; the last may go on (a prefix), the first may
    start earlier (a suffix: looked up in the vocabulary), a lone one may do both."""
    words = _WORD.findall(needle)
    if not words:
        return None
    starts_inside = bool(_WORD.match(needle))  # the needle may begin inside a word
    ends_inside = bool(re.search(r"[^\W_]$", needle))
    parts: list[str] = []
    for n, word in enumerate(words):
        first, last = n == 0, n == len(words) - 1
        if first and starts_inside:
            found = catalog.terms_containing(word, suffix=not (last and ends_inside))
            if found is None:
                continue  # too common to narrow by
            if not found:
                return "-"  # no indexed word can hold it: nothing matches
            parts.append("(" + " OR ".join(map(_quoted, found)) + ")")
        elif last and ends_inside:
            expanded = catalog.terms_from(word)
            if expanded == []:
                return "-"
            parts.append(f"{_quoted(word)}*" if expanded is None else "(" + " OR ".join(map(_quoted, expanded)) + ")")
        else:
            parts.append(_quoted(word))
    return " AND ".join(parts) if parts else None


def _text_search(catalog: Catalog, text: str, limit: int, dirty: set[str], scan_dirty: Scanner) -> list[Found]:
    needle = fold(text.strip())
    if not needle:
        return []
    query = _narrowing(catalog, needle)
    found: list[Found] = []
    if dirty:
        for key, conv_id, seq, prompt, answer in scan_dirty(dirty):
            hit = _text_hit(needle, conv_id, seq, prompt, answer, key)
            if hit:
                found.append(hit)
    before: int | None = None
    scanned = 0
    while query != "-" and len(found) < limit and scanned < SCAN_LIMIT:
        rows = catalog.matches(query, SCAN_BATCH, before=before)
        if not rows:
            break
        scanned += len(rows)
        before = rows[-1][0]
        refs = catalog.turn_refs([key for key, _, _ in rows])
        for key, prompt, answer in rows:
            ref = refs.get(key)
            if ref is None or ref[0] in dirty:
                continue
            hit = _text_hit(needle, ref[0], ref[1], prompt, answer, key)
            if hit:
                found.append(hit)
    found.sort(key=lambda f: f.score, reverse=True)  # newest first
    return found[:limit]


def _text_hit(needle: str, conv_id: str, seq: int, prompt: str, answer: str, key: int) -> Found | None:
    for field, value in (("prompt", prompt), ("result", answer)):
        at = fold(value).find(needle)
        if at >= 0:
            return Found(conv_id, seq, field, snippet(value, at, len(needle)), float(key), "text")
    return None
