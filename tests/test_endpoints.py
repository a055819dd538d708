"""The endpoint shims as RunPod's SDK runs them, in its local `test_input.json` mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {"RUNPOD_LOG_LEVEL": "INFO", "VIDAGENT_YOLO_MODEL": "offline:yolo11n-random",
       "VIDAGENT_WHISPER_MODEL": "offline:tiny.en"}

pytestmark = pytest.mark.slow


def run_handler(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "handler.py", *args], cwd=ROOT / "endpoints" / name,
        capture_output=True, text=True, timeout=300, env={**os.environ, **ENV},
    )


@pytest.mark.parametrize("name, expected", [("yolo", "'results': [{'width': 160"), ("whisper", "fox")])
def test_handler_runs_its_test_input(name, expected):
    proc = run_handler(name)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "completed successfully" in log and expected in log


def test_bad_input_is_a_clean_job_error():
    proc = run_handler("yolo", "--test_input", json.dumps({"input": {"images": ["%%%"]}}))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "failed with error: image 0: not valid base64" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("name", ["yolo", "whisper"])
def test_test_input_matches_the_worker_contract(name):
    from vidagent.workers import whisper, yolo

    model = {"yolo": yolo.YoloInput, "whisper": whisper.WhisperInput}[name]
    job = json.loads((ROOT / "endpoints" / name / "test_input.json").read_text())
    model.model_validate(job["input"])
