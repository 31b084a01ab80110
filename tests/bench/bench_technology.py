"""How to compile the hot path: the same record encoder four ways, side by side.

The pure-Python ``PureBatchBuilder`` (kafka_sink/protocol/records.py) is
compiled as it is by mypyc and by Cython (pure-Python mode, no annotations
added), and compared with the interpreter and with the hand-written C
extension (``kafka_sink._speedups.BatchBuilder``): ns per ``append()`` of a
150-byte JSON record with an 8-byte key, 700 records a batch (128 KiB), best
of five runs. mypyc and Cython work on a copy in a temporary folder; nothing
in the repository is touched.

    python3 -m pip install -q -e '.[bench]'
    python3 -m tests.bench.bench_technology

Needs mypy (for mypyc, in the test extra) and Cython (in the bench extra); a
missing compiler is reported in its row.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 700
BATCHES = 300
VALUE = b'{"level": "INFO", "msg": "' + b"request served " * 8 + b'"}'

# The module compiled by mypyc and Cython: the builder and its helpers, cut
# out of records.py, with the imports they need.
_HEAD = """from __future__ import annotations
import struct
from collections.abc import Iterable, Sequence
from crc32c import crc32c as _crc32c
from kafka_sink.errors import InvalidArgumentError, ProtocolError
from kafka_sink.protocol.codecs import (
    Compression, check_level, compress, decompress, ensure_available,
)
Header = tuple[str, bytes | None]
BATCH_HEADER_SIZE = 61
_MAGIC = 2
_TRANSACTIONAL_BIT = 0x10
_PREFIX = struct.Struct(">qiibI")
_SUFFIX = struct.Struct(">hiqqqhii")
_LENGTH_OVERHEAD = 12
_INT16_MIN, _INT16_MAX = -(1 << 15), (1 << 15) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
"""


def _extract(target: Path) -> None:
    source = (ROOT / "kafka_sink" / "protocol" / "records.py").read_text()
    body = source[
        source.index("# -- varints") : source.index("if TYPE_CHECKING:\n    BatchBuilder")
    ]
    body = body.replace(
        "BatchBuilder(compression, max_bytes=", "PureBatchBuilder(compression, max_bytes="
    )
    target.write_text(_HEAD + body)


def _load(name: str, folder: Path) -> ModuleType:
    (path,) = folder.glob(f"{name}*.so")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(tool: str, folder: Path) -> ModuleType | str:
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    if tool == "mypyc":
        (folder / "mypy.ini").write_text(
            "[mypy]\nignore_missing_imports = True\nfollow_imports = silent\n"
        )
        command = [sys.executable, "-m", "mypyc", "--config-file", "mypy.ini", "builder_copy.py"]
    else:
        if importlib.util.find_spec("Cython") is None:
            return "Cython is not installed (pip install cython)"
        command = [
            sys.executable,
            "-c",
            "from Cython.Build.Cythonize import main; main()",
            "-i",
            "-3",
            "builder_copy.py",
        ]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"{tool} failed: {(done.stdout + done.stderr).strip().splitlines()[-1:]}"
    return _load("builder_copy", folder)


def _time(builder: Callable[..., Any]) -> float:
    from kafka_sink.protocol.codecs import Compression

    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(BATCHES):
            batch = builder(Compression.NONE, 1 << 20)
            append = batch.append
            for i in range(RECORDS):
                append(1_700_000_000_000 + i, b"host-042", VALUE)
        best = min(best, (time.perf_counter() - start) / (BATCHES * RECORDS))
    return best * 1e9


def main() -> None:
    from kafka_sink import _speedups
    from kafka_sink.protocol import records

    rows: list[tuple[str, str]] = []
    rows.append(("CPython, pure Python (the reference)", f"{_time(records.PureBatchBuilder):.0f}"))
    for tool in ("mypyc", "Cython"):
        with tempfile.TemporaryDirectory() as folder:
            _extract(Path(folder) / "builder_copy.py")
            compiled = _compile(tool.lower(), Path(folder))
            if isinstance(compiled, str):
                rows.append((f"{tool}, the same module compiled", compiled))
            else:
                rows.append(
                    (f"{tool}, the same module compiled", f"{_time(compiled.PureBatchBuilder):.0f}")
                )
    rows.append(
        (
            "C extension on the CPython C API (kafka_sink._speedups)",
            f"{_time(_speedups.BatchBuilder):.0f}",
        )
    )
    print(f"Command: `python3 -m tests.bench.bench_technology` ({sys.version.split()[0]})\n")
    print("| implementation of BatchBuilder.append | ns per record |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
