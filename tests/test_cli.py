"""`vidagent` as users and scripts run it: real process, real files, real models."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import OFFLINE_CONFIG
from text_match import TINY_EN_MAX_WER, assert_words, said_more_often_than_spoken

FAST = ("--config", OFFLINE_CONFIG, "--detect-fps", "1")


def assert_one_line_errors(stderr: str):
    assert "Traceback" not in stderr
    for line in stderr.splitlines():
        assert len(line) < 400


def test_help_lists_every_option_without_loading_models():
    code = (
        "import sys; from typer.testing import CliRunner; from vidagent.cli.app import app;"
        "r = CliRunner().invoke(app, ['analyze', '--help'], terminal_width=200); print(r.output);"
        "heavy = [m for m in ('torch', 'ultralytics', 'faster_whisper', 'av', 'cv2') if m in sys.modules];"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for option in ("--out", "--config", "--format", "--backend", "--no-detect", "--no-transcribe",
                   "--detect-fps", "--detect-size", "--yolo-model", "--whisper-model", "--language",
                   "--word-timestamps", "--log-format", "--manifest", "--shard", "--jobs", "--fail-fast", "--no-cache", "--caption", "Exit codes"):
        assert option in out
    assert "HEAVY []" in out


@pytest.mark.slow
def test_analyze_sample_writes_the_documented_files(analysed_sample, sample_truth):
    result, folder, report = analysed_sample.result, analysed_sample.folder, analysed_sample.report
    assert folder.name == "my clip #1 – été"
    assert result.stdout.strip() == str(folder)

    assert report["schema_version"] == "1.5" and report["status"] == "complete"
    # Every default file, with the permissions the user's umask gives new files (not 0600).
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("report.json", "transcript.srt", "transcript.vtt", "report.html"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o666 & ~umask, name
    assert stat.S_IMODE((analysed_sample.out / "index.json").stat().st_mode) == 0o666 & ~umask
    media = report["media"]
    assert (media["width"], media["height"], media["has_audio"]) == (320, 240, True)
    assert media["duration_s"] == pytest.approx(10.0, abs=0.05)
    times = [d["t"] for d in report["detections"]]
    assert times == sorted(times) and len(times) == 10
    assert all(0 <= t < media["duration_s"] for t in times)
    for frame in report["detections"]:
        for obj in frame["objects"]:
            assert {"label", "confidence", "box"} <= set(obj)
            x1, y1, x2, y2 = obj["box"]
            assert 0 <= x1 <= x2 <= 320 and 0 <= y1 <= y2 <= 240
    segments = report["transcript"]["segments"]
    assert_words(" ".join(s["text"] for s in segments), sample_truth["text"], max_wer=TINY_EN_MAX_WER)
    assert segments[0]["start"] == pytest.approx(sample_truth["speech_start_s"], abs=0.6)
    assert segments[0]["words"]
    assert report["warnings"] == []
    assert report["usage"]["yolo"]["items"] == 10 and report["usage"]["whisper"]["jobs"] == 1
    assert report["settings"]["detect_fps"] == 1

    srt = (folder / "transcript.srt").read_text()
    vtt = (folder / "transcript.vtt").read_text()
    cue = re.search(r"^1\n00:00:0\d,\d{3} --> 00:00:0\d,\d{3}\n(.+)$", srt, re.M)
    assert cue and cue.group(1) in segments[0]["text"], srt  # the first segment's words, as the report has them
    assert vtt.startswith("WEBVTT\n") and re.search(r"00:00:0\d\.\d{3} --> ", vtt)


@pytest.mark.slow
def test_bad_inputs_fail_alone_and_clearly(run_cli, sample, sample_truth, clips, tmp_path):
    good = tmp_path / "good.mp4"
    shutil.copy(sample, good)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("hello, I am not a video\n")
    (tmp_path / "random.mp4").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "novideos").mkdir()
    (tmp_path / "novideos" / "notes.txt").write_text("x")
    audio_only = clips("speech.m4a", "-i", str(sample), "-vn", "-c:a", "copy")
    no_audio = clips("noaudio.mp4", "-i", str(sample), "-an", "-c", "copy")
    silent = clips(
        "silent.mp4", "-i", str(sample), "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo",
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest",
    )
    inputs = [good, tmp_path / "missing.mp4", tmp_path / "empty.mp4", tmp_path / "text.mp4",
              tmp_path / "random.mp4", tmp_path / "novideos", audio_only, no_audio, silent]
    result = run_cli("analyze", *inputs, "--out", tmp_path / "out", *FAST, "--no-detect")

    assert result.code == 1, result
    assert_one_line_errors(result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("vidagent: error:")]
    expected = {
        "missing.mp4": "no such file",
        "empty.mp4": "empty",
        "text.mp4": "not a readable media file",
        "random.mp4": "not a readable media file",
        "novideos": "no video or audio files found",
    }
    assert len(errors) == len(expected), result
    for name, reason in expected.items():
        assert any(name in line and reason in line for line in errors), (name, result.stderr)

    # The good ones still got their reports, with honest warnings.
    written = {p.parent.name for p in (tmp_path / "out").glob("*/report.json")}
    assert written == {"good", "noaudio", "silent", "speech"}
    report = lambda name: json.loads((tmp_path / "out" / name / "report.json").read_text())  # noqa: E731
    heard = lambda name: " ".join(s["text"] for s in report(name)["transcript"]["segments"])  # noqa: E731
    assert_words(heard("good"), sample_truth["text"], max_wer=TINY_EN_MAX_WER)
    assert report("noaudio")["transcript"]["segments"] == []
    assert any("no audio stream" in w for w in report("noaudio")["warnings"])
    assert report("silent")["transcript"]["segments"] == []
    assert any("silent" in w for w in report("silent")["warnings"])
    assert_words(heard("speech"), sample_truth["text"], max_wer=TINY_EN_MAX_WER)  # an audio file is an input too
    assert report("speech")["media"]["has_video"] is False
    assert "4 of 9 inputs analysed, 5 failed" in result.stderr


def test_config_errors_exit_2_with_one_line(run_cli, sample, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detect_fps: fast\n")
    result = run_cli("analyze", sample, "--config", bad)
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(bad) in result.stderr and "detect_fps" in result.stderr
    result = run_cli("analyze", sample, "--detect-fps", "-3")
    assert result.code == 2 and "--detect-fps" in result.stderr
    result = run_cli("analyze", sample, "--no-detect", "--no-transcribe")
    assert result.code == 2 and "nothing to do" in result.stderr


def test_usage_errors_exit_2(run_cli):
    assert run_cli("analyze").code == 2
    assert run_cli("analyze", "x.mp4", "--no-such-flag").code == 2


def test_schema_is_json_schema_of_the_report(run_cli):
    result = run_cli("schema")
    assert result.code == 0
    schema = json.loads(result.stdout)
    for key in ("schema_version", "media", "detections", "transcript", "warnings", "timings"):
        assert key in schema["properties"]


@pytest.mark.slow
def test_sentences_across_chunk_boundaries_come_out_once(run_cli, sample, sample_truth, clips, tmp_path):
    # Five back-to-back copies of the 6.7 s spoken part, chunked every ~7.85 s: a fixed cut
    # would fall inside words ("the quick round fox"); cuts in pauses keep every word once.
    from vidagent.media.probe import probe

    speech = clips("speech-only.mp4", "-ss", "1.4", "-to", "8.1", "-i", str(sample), "-c:v", "libx264",
                   "-pix_fmt", "yuv420p", "-c:a", "aac")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"file '{speech}'\n" for _ in range(5)))
    long_clip = clips("five-times.mp4", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy")
    result = run_cli("analyze", long_clip, "--out", tmp_path / "out", *FAST, "--no-detect",
                     "--audio-chunk", "7.85", "--word-timestamps")
    assert result.code == 0, result
    report = json.loads((tmp_path / "out" / "five-times" / "report.json").read_text())
    assert report["usage"]["whisper"]["jobs"] >= 3
    # Each word goes to the copy it is spoken in (by the middle of its time): every copy
    # says the truth's words, within tiny.en's tolerance, and none of them twice.
    copy_s = probe(speech).duration_s
    heard = [[] for _ in range(5)]
    for word in (w for s in report["transcript"]["segments"] for w in s["words"]):
        heard[int((word["start"] + word["end"]) / 2 // copy_s)].append(word["word"])
    for copy in heard:
        assert_words(" ".join(copy), sample_truth["text"], max_wer=TINY_EN_MAX_WER)
        assert said_more_often_than_spoken(" ".join(copy), sample_truth["text"]) == {}, heard


def test_doctor_reports_the_essentials(run_cli):
    result = run_cli("doctor", "--config", OFFLINE_CONFIG, env={"RUNPOD_API_KEY": "rp_doctor_SECRET"})
    assert result.code == 0, result
    for check in ("PyAV", "ffmpeg", "ultralytics", "faster-whisper", "whisper model", "RUNPOD_API_KEY set"):
        assert check in result.stdout
    assert "rp_doctor_SECRET" not in result.stdout + result.stderr
