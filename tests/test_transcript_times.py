"""Transcript times against the truth: the committed sentences spoken at known times.

Whisper's own segment times start early after a long silence and join sentences; the
report's segments start at their first word, end at their last and split at pauses.
"""

import json
import sys
from pathlib import Path

import pytest

from conftest import OFFLINE_CONFIG, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from speech_timeline import back_to_back, build, every, score  # noqa: E402

pytestmark = pytest.mark.slow


def segments_of(run_cli, clip: Path, out: Path, *extra) -> list[tuple[float, float, str]]:
    result = run_cli("analyze", clip, "--out", out, "--config", OFFLINE_CONFIG, "--no-detect", "--no-cache",
                     "--format", "json", *extra)
    assert result.code == 0, result
    report = json.loads((out / clip.stem / "report.json").read_text())
    return [(s["start"], s["end"], s["text"]) for s in report["transcript"]["segments"]]


def test_twenty_sentences_over_ten_minutes_each_once_within_a_second(run_cli, tmp_path):
    clip = tmp_path / "sentences-10min.m4a"
    truth = build(clip, every(20, 30.0), 600.0)
    found = score(segments_of(run_cli, clip, tmp_path / "out"), truth, tolerance_s=1.0)
    assert (found.found_once, found.within) == (20, 20), found


def test_sentences_a_pause_apart_are_separate_segments_timed_by_their_words(run_cli, tmp_path):
    # Ten sentences 1.2 s apart: Whisper puts several into one segment of its own.
    clip = tmp_path / "sentences-close.mp4"
    starts = back_to_back(10, pause_s=1.2)
    truth = build(clip, starts, starts[-1] + 6.0, with_video=True)
    segments = segments_of(run_cli, clip, tmp_path / "out", "--word-timestamps")
    found = score(segments, truth, tolerance_s=1.0)
    assert found.found_once >= 9 and found.within >= 9, (found, segments)
    report = json.loads((tmp_path / "out" / clip.stem / "report.json").read_text())
    for segment in report["transcript"]["segments"]:
        assert segment["start"] == segment["words"][0]["start"] and segment["end"] == segment["words"][-1]["end"]
