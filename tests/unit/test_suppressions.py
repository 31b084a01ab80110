"""Every suppression of a checker names what it suppresses and says why.

The two forms, on the line they apply to::

    value = thing()  # type: ignore[attr-defined]  # the reason
    import late  # noqa: PLC0415 - the reason

A ``type: ignore`` needs its error codes in brackets and a ``# reason`` after
them; a ``noqa`` needs its rule codes and a `` - reason`` after them. Only
comments are read (with :mod:`tokenize`), so a string that mentions either
directive is not one.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Where the tree is walked (no git): folders that hold no source of the project,
# besides the hidden ones (.git, .venv, the tools' caches).
SKIPPED_DIRS = frozenset({"venv", "build", "dist", "node_modules", "__pycache__"})

_TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<rest>.*)")
# The reason is a comment of its own after the codes (a noqa there is not one).
_TYPE_IGNORE_OK = re.compile(r"\[[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*\]\s+#\s*(?!noqa\b)\S")
_NOQA = re.compile(r"#\s*(?:ruff:\s*|flake8:\s*)?noqa(?P<rest>.*)", re.IGNORECASE)
_NOQA_OK = re.compile(r":\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*\s+-\s+\S")


def problems(source: str) -> Iterator[tuple[int, str]]:
    """(line, what is missing) for each suppression in *source* without codes or reason."""
    readline = io.StringIO(source).readline
    for token in tokenize.generate_tokens(readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        ignore = _TYPE_IGNORE.search(token.string)
        if ignore is not None and not _TYPE_IGNORE_OK.match(ignore.group("rest")):
            yield line, "type: ignore needs [codes] and '  # reason' after them"
        noqa = _NOQA.search(token.string)
        if noqa is not None and not _NOQA_OK.match(noqa.group("rest")):
            yield line, "noqa needs ': CODES' and ' - reason' after them"


def python_files() -> list[str]:
    """The project's .py files, relative to the root: git's list, or the tree's without git."""
    try:
        listed = subprocess.run(
            # Tracked, and new files not yet added (but not the ignored ones).
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.py"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        found: list[str] = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [
                d
                for d in dirs
                if not d.startswith(".") and d not in SKIPPED_DIRS and not d.endswith(".egg-info")
            ]
            found.extend(
                Path(folder, name).relative_to(ROOT).as_posix()
                for name in files
                if name.endswith(".py")
            )
        return sorted(found)
    # A tracked file deleted in the work tree is not source any more.
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def test_every_suppression_has_codes_and_a_reason() -> None:
    files = python_files()
    assert "kafka_sink/__init__.py" in files
    found: list[str] = []
    for name in files:
        with tokenize.open(ROOT / name) as stream:
            source = stream.read()
        found.extend(f"{name}:{line}: {what}" for line, what in problems(source))
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "x = f()  # type: ignore\n",
        "x = f()  # type: ignore[arg-type]\n",
        "x = f()  # type: ignore  # a reason but no code\n",
        "x = f()  # type: ignore[]  # empty codes\n",
        "x = f()  # type:ignore[arg-type]#no space before the reason\n",
        "x = f()  # type: ignore[arg-type]  # noqa: E501 - a reason for the noqa only\n",
        "import os  # noqa\n",
        "import os  # noqa: F401\n",
        "import os  # noqa - a reason but no code\n",
        "import os  # noqa: F401  # a reason in the wrong form\n",
        "import os  # NOQA:F401\n",
        "# ruff: noqa: E501\n",
    ],
)
def test_a_bare_suppression_is_reported(line: str) -> None:
    assert [number for number, _ in problems("a = 1\n" + line)] == [2]


@pytest.mark.parametrize(
    "line",
    [
        "x = f()  # type: ignore[arg-type]  # the stub is too narrow\n",
        "x = f()  # type: ignore[arg-type, union-attr]  # both, for one reason\n",
        "import os  # noqa: F401 - re-exported\n",
        "import os  # noqa: E402, F401 - after the path is set\n",
        "s = '# type: ignore and # noqa in a string are not comments'\n",
        "# a comment that speaks of neither\n",
    ],
)
def test_a_reasoned_suppression_is_not_reported(line: str) -> None:
    assert list(problems("a = 1\n" + line)) == []
