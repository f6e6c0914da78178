"""The design notes cite tests as evidence: each cited test must exist."""

import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md"])
TEST_NAMES = {
    path.name: set(re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), re.M))
    for path in (ROOT / "tests").glob("test_*.py")
}
# `test_x.py::test_a`, then `::test_b` cites test_b of the same file; a trailing `*` is a prefix.
CITATION = re.compile(r"(test_\w+\.py)(?:::([\w*]+))?|(?<![\w.])::([\w*]+)")


def citations(text: str) -> list[tuple[str, str]]:
    found = []
    for line in text.splitlines():
        current = None
        for match in CITATION.finditer(line):
            file, name = (match.group(1), match.group(2)) if match.group(1) else (current, match.group(3))
            current = file
            if name:
                found.append((file or "?", name))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_test_a_doc_cites_exists(doc):
    missing = [
        f"{file}::{name}"
        for file, name in citations(doc.read_text(encoding="utf-8"))
        if not fnmatch.filter(TEST_NAMES.get(file, ()), name)
    ]
    assert missing == [], f"{doc.name} cites tests that do not exist"


def test_the_citation_reader_sees_files_names_and_prefixes():
    line = "x `test_a.py::test_one`, `::test_two_*`, `test_b.py::test_three[1]` and test_c.py"
    assert citations(line) == [("test_a.py", "test_one"), ("test_a.py", "test_two_*"), ("test_b.py", "test_three")]
