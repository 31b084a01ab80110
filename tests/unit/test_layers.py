"""The layers of the package, as a contract the import graph must keep.

From the top down: the applications (the command line, the demo, the test
helpers), the ``kafka_sink`` facade, the integrations (the logging handler,
the structlog processor and logger factory, the metrics exporter), the hooks
and the metrics registry beside the producer, the producer, the network
layer, the sans-I/O protocol layer, and at the bottom the values every layer
shares (errors, error codes, configuration, constants, the lifecycle). A
module imports only from its own package or from a layer below; every import
counts, also one inside a function or under ``TYPE_CHECKING``, except the few
named in ``ANNOTATION_ONLY`` with their reason.

The graph is read from the source with :mod:`ast`, so the test needs no
import and sees the imports a run may never reach. Two lookups by name stay
outside it on purpose: the facade imports each public name on first use, and
``kafka_sink.metrics`` forwards the exporter's names, which moved up to the
integrations, with a DeprecationWarning.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kafka_sink"

# Lowest first. A module may import a module of a lower rank, or of its own
# unit (a package, or a module of the bottom layers, itself).
RANKS: tuple[tuple[str, ...], ...] = (
    ("kafka_sink.error_codes", "kafka_sink.constants", "kafka_sink._speedups"),
    ("kafka_sink.errors", "kafka_sink._accel", "kafka_sink.lifecycle"),
    ("kafka_sink.options", "kafka_sink.serialization"),
    ("kafka_sink.config",),
    ("kafka_sink.protocol",),
    ("kafka_sink.net",),
    ("kafka_sink.producer",),
    ("kafka_sink.metrics",),
    ("kafka_sink.hooks",),
    ("kafka_sink.integrations",),
    # The facade: the public names, each imported from its layer on first use.
    ("kafka_sink",),
    # The applications built on the public API.
    ("kafka_sink.testing",),
    ("kafka_sink.demo",),
    ("kafka_sink.cli",),
    ("kafka_sink.__main__",),
)

# Imports that point upward and why each is allowed. Only annotations:
# nothing runs them, so no layer loads one above it.
ANNOTATION_ONLY = {
    # SecurityConfig.sasl_oauth_token_provider returns a token, whose type
    # (with its wire checks) is the protocol layer's.
    ("kafka_sink.config", "kafka_sink.protocol.oauthbearer"),
}

# The bottom layers do no I/O of their own: the protocol layer turns bytes
# into values and back; only the network layer touches sockets.
# The configuration may name ssl.SSLContext (a caller may pass one) but opens
# nothing.
IO = ("socket", "selectors", "threading", "logging", "asyncio")
SANS_IO = {
    # The protocol layer reads no clock either: time is passed in.
    "kafka_sink.protocol": ("ssl", "time", *IO),
    "kafka_sink.config": IO,
    "kafka_sink.errors": ("ssl", *IO),
    "kafka_sink.options": ("ssl", *IO),
}


def unit_of(module: str) -> str:
    """The rank entry a module belongs to: its package, or itself."""
    for rank in RANKS:
        for unit in rank:
            if module == unit or (unit != "kafka_sink" and module.startswith(unit + ".")):
                return unit
    raise AssertionError(f"{module} is in no layer: add it to RANKS")


def rank_of(unit: str) -> int:
    return next(i for i, rank in enumerate(RANKS) if unit in rank)


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path) -> bool:
    where = root.parent / Path(*name.split("."))
    # _speedups is a compiled extension: there may be no .py file of it.
    return where.with_suffix(".py").exists() or where.is_dir() or name.endswith("._speedups")


def imports_of(path: Path, root: Path = PACKAGE) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports (absolute names), with the line of the import."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # "from kafka_sink import _speedups" imports the submodule, not
            # the package's public names; each module once per statement.
            names = (f"{target}.{alias.name}" for alias in node.names)
            for imported in dict.fromkeys(n if is_module(n, root) else target for n in names):
                yield imported, node.lineno


def source_files(root: Path = PACKAGE) -> list[Path]:
    return sorted(root.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    for path in source_files():
        unit_of(module_name(path))


def upward_imports(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in source_files(root):
        importer = module_name(path, root)
        own = unit_of(importer)
        for imported, line in imports_of(path, root):
            if imported.partition(".")[0] != "kafka_sink":
                continue
            unit = unit_of(imported)
            if unit == own or rank_of(unit) < rank_of(own):
                continue
            if (importer, imported) not in ANNOTATION_ONLY:
                found.append(f"{importer}:{line} ({own}) imports {imported} ({unit})")
    return found


def test_no_import_points_upward() -> None:
    assert upward_imports() == []


def test_the_annotation_only_imports_are_only_annotations() -> None:
    for importer, imported in ANNOTATION_ONLY:
        path = PACKAGE.parent / Path(*importer.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        tree = ast.parse(path.read_text())
        guarded = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for inner in ast.walk(node)
        }
        found = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == imported
        ]
        assert found, f"{importer} no longer imports {imported}: drop it from ANNOTATION_ONLY"
        assert all(id(node) in guarded for node in found), f"{importer} runs {imported}"


@pytest.mark.parametrize("layer", sorted(SANS_IO))
def test_the_bottom_layers_do_no_io(layer: str) -> None:
    for path in source_files():
        if unit_of(module_name(path)) != layer:
            continue
        for imported, line in imports_of(path):
            assert imported.partition(".")[0] not in SANS_IO[layer], f"{module_name(path)}:{line}"


def test_the_contract_catches_an_upward_import(tmp_path: Path) -> None:
    # The check must be able to fail: the protocol layer importing the
    # producer, and a module importing the facade's names, are both seen.
    root = tmp_path / "kafka_sink"
    (root / "protocol").mkdir(parents=True)
    (root / "producer").mkdir()
    (root / "__init__.py").write_text("")
    (root / "producer" / "sink.py").write_text("")
    (root / "protocol" / "bad.py").write_text(
        "import struct\n\nfrom kafka_sink.producer.sink import Sink\nfrom kafka_sink import Sink\n"
    )
    assert upward_imports(root) == [
        "kafka_sink.protocol.bad:3 (kafka_sink.protocol) imports kafka_sink.producer.sink "
        "(kafka_sink.producer)",
        "kafka_sink.protocol.bad:4 (kafka_sink.protocol) imports kafka_sink (kafka_sink)",
    ]
