"""scripts/bench_segments.py: its --help, and (slow) its smoke run end to end."""

import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "bench_segments.py"


def test_help_names_every_option():
    result = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for option in ("--minutes", "--workers", "--segment-seconds", "--smoke", "--work"):
        assert option in result.stdout


@pytest.mark.slow
def test_smoke_run_prints_the_table_and_the_model(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, "--smoke", "--work", str(tmp_path)], capture_output=True,
                            text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("single client") for line in lines)
    assert any(line.startswith("segments ") and " 1 " in line for line in lines)
    assert any("one hour of 1080p on 60 GPU workers" in line for line in lines)
