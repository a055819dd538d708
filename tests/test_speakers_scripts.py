"""The conversation generator, the scorer and the benchmark's command lines, on a tiny input."""

import json
import shutil
import subprocess
import sys
import wave

import pytest

from conftest import ROOT

SCRIPTS = ROOT / "scripts"


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.mark.parametrize("name", ["make_conversation.py", "score_diarization.py", "bench_speakers.py"])
def test_help_works(name):
    run = script(name, "--help")
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr


def test_a_tiny_conversation_keeps_its_truth_and_scores_itself_perfectly(tmp_path):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed (make system-deps)")
    out = tmp_path / "tiny"
    run = script("make_conversation.py", "--out", out, "--speakers", "3", "--minutes", "0.3", "--seed", "4")
    assert run.returncode == 0, run.stderr
    meta = json.loads(out.with_suffix(".json").read_text())
    with wave.open(str(out.with_suffix(".wav"))) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        duration = w.getnframes() / 16000
    assert meta["duration_s"] == pytest.approx(duration, abs=0.01)
    turns = meta["turns"]
    assert turns and all(0 <= t["start"] < t["end"] <= duration + 0.01 for t in turns)
    assert {t["speaker"] for t in turns} <= {s["id"] for s in meta["speakers"]}
    rttm = out.with_suffix(".rttm").read_text().splitlines()
    assert len(rttm) == len(turns) and all(line.startswith("SPEAKER tiny 1 ") for line in rttm)
    same = script("score_diarization.py", "--reference", out.with_suffix(".rttm"), "--hypothesis",
                  out.with_suffix(".json"), "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["der"] == pytest.approx(0.0, abs=1e-9)
    missing = script("score_diarization.py", "--reference", tmp_path / "none.rttm", "--hypothesis", out.with_suffix(".json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
