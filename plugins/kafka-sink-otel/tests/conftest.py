"""The repository's test brokers and oracle consumer, for the plugin's tests.

The broker fixtures (``mock_cluster``, ``new_mock_cluster``, ``kafka23``,
``tansu``, ``broker``, ``topic_name``) are those of the repository's
``tests/conftest.py``, imported here so that this folder's tests get them
however pytest is started: from the repository root
(``python3 -m pytest plugins/kafka-sink-otel/tests``), from the plugin's
folder, or with ``--rootdir`` pointing elsewhere. The repository root goes
on ``sys.path`` for that, found from this file's place, not from the
current directory.

Tests that use a broker fixture are marked ``integration`` and ``mock``,
``kafka23`` or ``tansu``, as in the rest of the suite.

Run in the same session as the repository's own tests, these fixtures are
separate instances from theirs: pytest keeps a fixture per conftest, so the
session's brokers start once more for this folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
if not (REPOSITORY / "tests" / "conftest.py").is_file():
    raise RuntimeError(f"{REPOSITORY} does not hold the repository's tests/conftest.py")
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from tests import conftest as repository  # noqa: E402 - needs the path set above
from tests.conftest import (  # noqa: E402, F401 - fixtures, found by pytest by name
    _reset_shared_mock_cluster,
    broker,
    kafka23,
    mock_cluster,
    new_mock_cluster,
    tansu,
    topic_name,
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The repository's conftest marks its own tests; this marks ours the same
    # way, whether or not it is loaded too (it marks only what is unmarked).
    mine = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    unmarked = [item for item in mine if item.get_closest_marker("integration") is None]
    repository.pytest_collection_modifyitems(unmarked)
