"""The documents hold together: every relative link resolves, and the README opens as CI expects.

Checked: the README, every page of docs/ and examples/README.md. A relative
link must name a file or directory of the repository; a ``#fragment`` must
be a heading of the page it points into, with GitHub's anchors (lower case,
punctuation dropped but ``-`` and ``_``, spaces as ``-``, a repeated heading
numbered ``-1``, ``-2``...). Links inside code blocks and code spans are not
links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "examples" / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+).*?\1")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with code spans removed."""
    lines = []
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match:
            if fence is None:
                fence = match[1]
            elif match[1] == fence:
                fence = None
            continue
        if fence is None:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading's text (before it is made unique)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor the headings of ``page`` give."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match is None:
            continue
        base = anchor(match[2])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The targets of the inline links of ``page``'s prose."""
    targets = []
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        targets.extend(_LINK.findall(_CODE_SPAN.sub("", line)))
    return targets


def test_the_anchors_are_githubs() -> None:
    assert anchor("Configuration: the environment, and the names you paste") == (
        "configuration-the-environment-and-the-names-you-paste"
    )
    assert anchor("The asynchronous `Sink`") == "the-asynchronous-sink"
    assert anchor("linger_ms") == "linger_ms"
    assert anchor("Throughput: 200,000 records, acks=1") == "throughput-200000-records-acks1"
    assert anchor("See [the docs](docs/README.md)") == "see-the-docs"


def test_the_pages_are_found() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/README.md", "docs/performance.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if _SCHEME.match(target):  # https:, mailto:...: not ours to check
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.relative_to(ROOT)}")
    assert not broken, broken


def test_every_docs_page_is_linked_from_the_readme_or_the_docs_index() -> None:
    linked = {
        (page.parent / target.partition("#")[0]).resolve()
        for page in (ROOT / "README.md", ROOT / "docs" / "README.md")
        for target in links(page)
        if not _SCHEME.match(target)
    }
    for page in (ROOT / "docs").glob("*.md"):
        assert page.resolve() in linked, page.name


def test_the_readme_opens_with_the_two_commands_ci_runs() -> None:
    # .ci/run takes the second line of the README's first sh block as the test command.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    language, body = blocks[0]
    assert language == "sh"
    first, second = body.splitlines()
    assert "python3 -m kafka_sink demo" in first
    assert "python3 -m pytest" in second
