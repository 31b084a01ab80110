"""The sdist and the wheel build with ``python3 -m build``, and the wheel installs in a fresh venv.

``python3 -m build`` makes the sdist, then the wheel from the unpacked sdist,
so a file the sdist forgot breaks the wheel here. The build's isolated
environment and the venv get their packages (setuptools, the dependencies)
from pip's configured index, as any install does. Deselect with
``-m "not packaging"``; it takes well under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"


def run(
    command: list[str | Path],
    *,
    cwd: Path | None = None,
    timeout: float = 180,
    extra_env: dict[str, str] | None = None,
) -> str:
    # The children must not find this checkout: no PYTHONPATH, and a working
    # directory outside it; and the wheel runs the path it was built with
    # (the suite's second run sets KAFKA_SINK_PURE).
    hidden = ("PYTHONPATH", "PYTHONHOME", "KAFKA_SINK_PURE")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT], cwd=out, timeout=240)
    return out


def test_the_sdist_carries_the_sources_and_the_documents(dist: Path) -> None:
    (sdist,) = dist.glob("kafka_sink-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "kafka_sink/__init__.py",
        "kafka_sink/py.typed",
        "kafka_sink/options.py",
        "kafka_sink/_speedups.c",
        "kafka_sink/_speedups.pyi",
    ):
        assert name in names, name
    assert not any(name.startswith(("tests/", "plugins/", "examples/")) for name in names)


def test_the_wheel_declares_its_license_and_metadata(dist: Path) -> None:
    (wheel,) = dist.glob("kafka_sink-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"kafka_sink-{VERSION}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        license_text = archive.read(f"{info}/licenses/LICENSE").decode()
    assert "kafka_sink/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)
    lines = metadata.splitlines()
    assert "License-Expression: Apache-2.0" in lines
    assert "License-File: LICENSE" in lines
    assert "Classifier: Typing :: Typed" in lines
    assert any(line.startswith("Project-URL: Changelog, ") for line in lines)
    assert "Requires-Dist: pluggy>=1.3" in lines
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text


def test_the_wheel_carries_every_module_of_the_package(dist: Path) -> None:
    # Subpackages (kafka_sink/cli/, kafka_sink/testing/...) are found by
    # setuptools' packages.find: none may be left out, and no module of the
    # checkout may be missing from the wheel.
    (wheel,) = dist.glob("kafka_sink-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "kafka_sink").rglob("*.py")}
    assert {"kafka_sink/cli/send.py", "kafka_sink/testing/__main__.py"} <= modules
    assert sorted(modules - names) == []


def test_the_wheel_installs_in_a_fresh_venv_and_imports(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("kafka_sink-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel],
        cwd=tmp_path,
        timeout=240,
    )
    out = run(
        [
            python,
            "-c",
            "import importlib.metadata, kafka_sink\n"
            "print(kafka_sink.__file__)\n"
            "print(importlib.metadata.version('kafka-sink'))\n"
            "print(kafka_sink.KafkaHandler.__name__, kafka_sink.Sink.__name__)\n"
            "print(importlib.metadata.metadata('kafka-sink')['License-Expression'])\n"
            "print(kafka_sink.IMPLEMENTATION)\n",
        ],
        cwd=tmp_path,
    ).splitlines()
    assert Path(out[0]).is_relative_to(venv), out
    assert out[1:5] == [VERSION, "KafkaHandler Sink", "Apache-2.0", "compiled"]
    assert "usage: kafka-sink" in run([venv / "bin" / "kafka-sink", "--help"], cwd=tmp_path)


def test_without_a_compiler_the_install_succeeds_and_runs_the_pure_path(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", out, ROOT],
        cwd=tmp_path,
        timeout=240,
        extra_env={"CC": "false", "LDSHARED": "false"},  # every compiler call fails
    )
    (wheel,) = out.glob("kafka_sink-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert not [name for name in archive.namelist() if name.endswith(".so")]
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
    code = (
        "import kafka_sink\n"
        "sink = kafka_sink.Sink('127.0.0.1:1')\n"
        "print(kafka_sink.IMPLEMENTATION, sink.metrics()['implementation'])\n"
        "sink.close(0)\n"
    )
    assert run([python, "-c", code], cwd=tmp_path).split() == ["pure", "pure"]
