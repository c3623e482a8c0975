"""The repository cites only documents it carries: docs/exchange.md, by a section that exists.

Sections are headings `## N. Title` and subsections `### N.M Title`; a citation is `§N` or
`§N.M` (usually written `docs/exchange.md §11.1`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXCHANGE = ROOT / "docs" / "exchange.md"

# Spelled in pieces so that this file does not cite what it forbids.
FORBIDDEN = [
    re.compile(re.escape("../" + "shared")),
    re.compile("BINANCE_P2P" + "_API"),
    # the old names of that file ("API" then "notes" or "page"), also across a wrapped comment
    re.compile(r"\bAPI[\s#]*" + "(?:notes|page)" + r"\b"),
]
SECTION = re.compile(r"^## (\d+)\. \S", re.M)
SUBSECTION = re.compile(r"^### (\d+\.\d+) \S", re.M)
CITATION = re.compile(r"§(\d+(?:\.\d+)?)")


def tracked() -> dict[str, str]:
    """Every tracked file's text (undecodable bytes dropped), by its path in the repository."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    files = {}
    for name in out.stdout.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            files[name] = path.read_bytes().decode("utf-8", errors="ignore")
    return files


def headings() -> set[str]:
    text = EXCHANGE.read_text(encoding="utf-8")
    return set(SECTION.findall(text)) | set(SUBSECTION.findall(text))


def test_exchange_doc_has_its_numbered_sections() -> None:
    found = headings()
    assert {str(n) for n in range(1, 12)} <= found
    assert {f"11.{n}" for n in range(1, 18)} <= found


def test_no_file_cites_a_document_outside_the_repository() -> None:
    hits = [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
            for name, text in tracked().items() for rx in FORBIDDEN for m in rx.finditer(text)]
    assert not hits, "cite docs/exchange.md instead:\n" + "\n".join(hits)


def test_every_section_citation_names_an_existing_heading() -> None:
    known = headings()
    files = tracked()
    assert "docs/exchange.md" in files
    cited = 0
    missing = []
    for name, text in files.items():
        for m in CITATION.finditer(text):
            cited += 1
            if m.group(1) not in known:
                line = text.count("\n", 0, m.start()) + 1
                missing.append(f"{name}:{line}: §{m.group(1)}")
    assert cited > 0
    assert not missing, "no such heading in docs/exchange.md:\n" + "\n".join(missing)
