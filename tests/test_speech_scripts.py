"""Smoke runs of the speech scripts: scripts/make_sentences.py (espeak-ng recordings with
their truth) and scripts/bench_transcript_times.py, on tiny inputs."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from sounds import decoded

SCRIPTS = ROOT / "scripts"


def script(name: str, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.parametrize("name", ["make_sentences.py", "bench_transcript_times.py"])
def test_help_prints_usage_and_writes_nothing(name, tmp_path):
    done = script(name, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "--minutes" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_make_sentences_refuses_bad_gaps_in_one_line(tmp_path):
    done = script("make_sentences.py", tmp_path / "x.wav", "--minutes", "1", "--gaps", "40-5")
    assert done.returncode == 2 and "--gaps" in done.stderr and "Traceback" not in done.stderr


def test_make_sentences_speaks_at_the_times_its_truth_says(tmp_path):
    out = tmp_path / "short.wav"
    done = script("make_sentences.py", out, "--minutes", "0.4", "--gaps", "2-4", "--seed", "3")
    assert done.returncode == 0, done.stderr
    truth = json.loads(out.with_suffix(".json").read_text())
    sentences = truth["sentences"]
    assert len(sentences) >= 3 and truth["duration_s"] == 24.0
    assert len({s["voice"] for s in sentences}) == len(sentences)  # each another voice
    samples = decoded(out)
    assert len(samples) / 16000 == pytest.approx(24.0, abs=0.01)
    loud = np.abs(samples.astype(np.int32)) > 300
    said = np.zeros(len(samples), bool)
    for s in sentences:
        said[int(s["start"] * 16000):int(s["end"] * 16000)] = True
        assert 0.8 < s["end"] - s["start"] < 6.0  # a sentence, spoken
    assert not loud[~said].any()  # silence outside the sentences
    for s in sentences:  # sound from the first 50 ms of each sentence to its last 50 ms
        assert loud[int(s["start"] * 16000):int((s["start"] + 0.05) * 16000)].any()
        assert loud[int((s["end"] - 0.05) * 16000):int(s["end"] * 16000)].any()
    for a, b in zip(sentences, sentences[1:]):
        assert 2.0 <= b["start"] - a["end"] <= 4.0 + 0.001


@pytest.mark.slow
def test_bench_transcript_times_prints_both_ways_on_half_a_minute():
    done = script("bench_transcript_times.py", "--minutes", "0.5", "--gaps", "3-6")
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines()
            if line.startswith("| vidagent") or line.startswith("| faster-whisper")}
    assert set(rows) == {"vidagent analyze", "faster-whisper direct (first-word starts)"}
    for line in rows.values():
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert re.fullmatch(r"\d+/\d+", cells[1]) and cells[4].endswith("%"), line
    assert rows["faster-whisper direct (first-word starts)"].rstrip(" |").endswith("1.00")
