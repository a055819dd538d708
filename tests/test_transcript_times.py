"""Transcript times against the truth: the committed sentences spoken at known times, and
a recording of many voices and speeds with long silences (tests/data/voices.opus).

Whisper's own segment times start early after a long silence and join sentences; the
report's segments start at their first word, end at their last and split at pauses.
"""

import json
import sys
from pathlib import Path

import pytest

from conftest import DATA, OFFLINE_CONFIG, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from speech_timeline import Spoken, back_to_back, build, every, score, word_error_rate  # noqa: E402

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


# Word error may exceed faster-whisper's own on the whole file by this much (another CPU
# or library build decodes a small model a little differently).
WORDS_TOLERANCE = 0.10


def test_many_voices_after_long_silences_start_within_a_second_with_the_direct_calls_words(run_cli, tmp_path):
    # Two minutes: five sentences by five espeak-ng voices at different speeds and pitches,
    # 5-40 s of silence between them (scripts/make_sentences.py --minutes 2).
    voices = DATA / "voices.opus"
    truth = [Spoken(s["text"], s["start"], s["end"])
             for s in json.loads(voices.with_suffix(".json").read_text())["sentences"]]
    segments = segments_of(run_cli, voices, tmp_path / "out")
    found = score(segments, truth, tolerance_s=1.0)
    assert (found.starts_within, found.sentences) == (5, 5) and found.worst_start_s <= 1.0, (found, segments)

    from faster_whisper import WhisperModel

    from vidagent.workers.catalog import resolve_whisper

    model = WhisperModel(resolve_whisper("offline:tiny.en"), device="cpu", compute_type="int8")
    direct, _ = model.transcribe(str(voices), language="en", vad_filter=True)
    floor = word_error_rate([(s.start, s.end, s.text) for s in direct], truth)
    assert word_error_rate(segments, truth) <= floor + WORDS_TOLERANCE, (segments, floor)


def test_a_sentence_across_a_window_edge_of_its_chunk_is_heard():
    """The 60-minute recording's sentence that no run of vidagent transcribed: in its 60 s
    chunk (tests/data/window_edge.flac, the chunk as the client cut it, lossless) it falls
    across the edge of Whisper's first 30 s window, and sequential decoding skipped it. The
    CPU default now decodes windows cut at VAD's pauses (workers/whisper.py,
    default_batch_size); the job is the client's own, through the worker's handle()."""
    import base64
    import difflib

    from text_match import words
    from vidagent.workers import whisper

    edge = DATA / "window_edge.flac"
    straddling = json.loads(edge.with_suffix(".json").read_text())["straddling"]
    job = {"audio_base64": base64.b64encode(edge.read_bytes()).decode(), "model": "offline:tiny.en",
           "language": "en", "word_timestamps": True, "enable_vad": True}  # what tasks/transcribe.build_job sends
    out = whisper.handle(job)
    assert out["batch_size"] == 1  # on a CPU, with VAD: one window at a time, cut in pauses
    truth, heard = words(straddling), words(out["transcription"])
    run = difflib.SequenceMatcher(a=truth, b=heard, autojunk=False).find_longest_match(0, len(truth), 0, len(heard))
    assert run.size >= 3, (straddling, out["transcription"])  # three of its seven words in a row, in place
