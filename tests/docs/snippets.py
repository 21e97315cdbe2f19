"""Code blocks of the README, docs/ and the client's README, with the marker that may precede each one.

A block runs in CI unless the line before it says why not: `<!-- gpu-only -->` (needs a GPU
machine) or `<!-- not-run: REASON -->`. `text` blocks are output, not commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "clients" / "python" / "README.md"]
COMMAND_LANGUAGES = {"python", "bash", "shell", "sh", "console"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)
MARKER = re.compile(r"<!--\s*(gpu-only|not-run)(?::\s*(.*?))?\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    doc: Path
    line: int
    language: str
    code: str
    section: str  # the `## ` heading it sits under
    marker: str | None  # "gpu-only" or "not-run"
    reason: str

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def snippets(doc: Path) -> list[Snippet]:
    text = doc.read_text()
    found = []
    for match in FENCE.finditer(text):
        language = match.group(1)
        if language not in COMMAND_LANGUAGES:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        headings = re.findall(r"^## (.+)$", text[: match.start()], flags=re.M)
        found.append(
            Snippet(
                doc=doc,
                line=text.count("\n", 0, match.start()) + 1,
                language=language,
                code=match.group(2),
                section=headings[-1] if headings else "",
                marker=marker.group(1) if marker else None,
                reason=(marker.group(2) or "") if marker else "",
            )
        )
    return found


def all_snippets() -> list[Snippet]:
    return [snippet for doc in DOCS for snippet in snippets(doc)]
