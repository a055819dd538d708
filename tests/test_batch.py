"""Batch and CI runs: many inputs, manifests, shards, JSON logs, the index, resume."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import OFFLINE_CONFIG
from vidagent.batch import collect_inputs, in_shard, parse_shard
from vidagent.errors import ConfigError

FAST = ("--config", OFFLINE_CONFIG, "--detect-fps", "1")


def test_shards_cover_the_batch_exactly_once():
    paths = [Path(f"videos/day-{d}/cam-{c}.mp4") for d in range(20) for c in range(7)]
    for count in (1, 2, 3, 7):
        shards = [[p for p in paths if in_shard(p, (i, count))] for i in range(1, count + 1)]
        assert sorted(p for shard in shards for p in shard) == sorted(paths)  # union, no overlap
        assert all(shard for shard in shards)  # 140 paths spread over every shard
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1-2"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_inputs_from_folders_globs_and_manifests(tmp_path, sample):
    (tmp_path / "a" / ".hidden").mkdir(parents=True)
    (tmp_path / "a" / "b").mkdir()
    for name in ("a/one.mp4", "a/b/two.MOV", "a/.hidden/skip.mp4", "a/notes.txt", "three.mkv"):
        shutil.copy(sample, tmp_path / name)
    (tmp_path / "list.txt").write_text("# comment\nthree.mkv\n\na/one.mp4\n")
    (tmp_path / "m.csv").write_text("path,language,detect_fps\nthree.mkv,de,2\n")
    (tmp_path / "m.jsonl").write_text('{"path": "a/b/two.MOV", "yolo_conf": 0.5}\n')

    names = lambda outcomes: [o.input.name for o in outcomes]  # noqa: E731
    assert names(collect_inputs([tmp_path / "a"])) == ["two.MOV", "one.mp4"] or \
        names(collect_inputs([tmp_path / "a"])) == ["one.mp4", "two.MOV"]
    assert sorted(names(collect_inputs([Path(f"{tmp_path}/**/*.mp4")]))) == ["one.mp4"]
    assert names(collect_inputs([], tmp_path / "list.txt")) == ["three.mkv", "one.mp4"]
    csv_rows = collect_inputs([], tmp_path / "m.csv")
    assert csv_rows[0].overrides == {"language": "de", "detect_fps": "2"}
    assert collect_inputs([], tmp_path / "m.jsonl")[0].overrides == {"yolo_conf": 0.5}
    # the same file twice is analysed once
    assert len(collect_inputs([tmp_path / "three.mkv"], tmp_path / "list.txt")) == 2
    assert collect_inputs([Path(f"{tmp_path}/*.webm")])[0].error.endswith("the pattern matches no file")
    (tmp_path / "bad.csv").write_text("path,runpod_api_key\nthree.mkv,x\n")
    with pytest.raises(ConfigError, match=r"bad.csv:2: 'runpod_api_key' is not a per-video setting"):
        collect_inputs([], tmp_path / "bad.csv")


@pytest.mark.slow
def test_batch_with_broken_and_odd_files(run_cli, sample, clips, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample, inputs / "good.mp4")
    shutil.copy(sample, inputs / "Überschall – clip #2.mp4")
    shutil.copy(clips("noaudio.mp4", "-i", str(sample), "-an", "-c", "copy"), inputs / "quiet.mp4")
    (inputs / "broken.mp4").write_bytes(sample.read_bytes()[:2000])
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,language,detect_fps\nin/good.mp4,en,2\n")
    out = tmp_path / "out"
    result = run_cli("analyze", inputs, "--manifest", manifest, "--out", out, *FAST, "--jobs", "2",
                     "--log-format", "json")
    assert result.code == 1, result

    events = [json.loads(line) for line in result.stderr.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("video_started") == 4 and kinds[-1] == "totals"
    assert all(isinstance(e["time"], float) for e in events)
    failed = [e for e in events if e["event"] == "video_failed"]
    assert len(failed) == 1 and "broken.mp4" in failed[0]["video"] and failed[0]["reason"]
    assert events[-1] == {**events[-1], "inputs": 4, "analysed": 3, "failed": 1}
    assert {e["video"] for e in events if e["event"] == "progress"} <= {str(p) for p in inputs.iterdir()}

    index = json.loads((out / "index.json").read_text())["videos"]
    by_name = {Path(row["input"]).name: row for row in index}
    assert by_name["broken.mp4"]["status"] == "failed" and "broken.mp4" in by_name["broken.mp4"]["error"]
    assert by_name["Überschall – clip #2.mp4"]["status"] == "done"
    assert any("no audio stream" in w for w in by_name["quiet.mp4"]["warnings"])
    assert by_name["good.mp4"]["detection_frames"] == 20  # the manifest's detect_fps 2 won
    assert by_name["good.mp4"]["report"] == str(out / "good" / "report.json")
    assert by_name["good.mp4"]["usd"] >= 0 and by_name["broken.mp4"]["usd"] is None
    rows = list(csv.DictReader((out / "index.csv").open()))
    assert {r["status"] for r in rows} == {"done", "failed"} and len(rows) == 4
    good = json.loads((out / "good" / "report.json").read_text())
    assert good["settings"]["language"] == "en" and good["settings"]["detect_fps"] == 2
    assert (out / "Überschall – clip #2" / "transcript.vtt").exists()
    assert sorted(result.stdout.split("\n")[:-1]) == sorted(
        str(out / name) for name in ("good", "quiet", "Überschall – clip #2"))


@pytest.mark.slow
def test_rerun_uses_the_cache_and_a_changed_setting_redoes_only_its_stage(run_cli, sample, tmp_path):
    env = {"VIDAGENT_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli("analyze", sample, "--out", tmp_path / "a", *FAST, env=env)
    second = run_cli("analyze", sample, "--out", tmp_path / "b", *FAST, env=env)
    third = run_cli("analyze", sample, "--out", tmp_path / "c", *FAST, "--conf", "0.5", env=env)
    assert first.code == second.code == third.code == 0
    usage = lambda d: json.loads((tmp_path / d / "sample" / "report.json").read_text())["usage"]  # noqa: E731
    assert usage("a")["yolo"]["cached_jobs"] == 0 and usage("a")["whisper"]["cached_jobs"] == 0
    assert usage("b")["yolo"]["cached_jobs"] == usage("b")["yolo"]["jobs"] > 0
    assert usage("b")["whisper"]["cached_jobs"] == 1 and usage("b")["whisper"]["execution_s"] == 0
    assert usage("c")["yolo"]["cached_jobs"] == 0 and usage("c")["whisper"]["cached_jobs"] == 1
    report = lambda d: json.loads((tmp_path / d / "sample" / "report.json").read_text())  # noqa: E731
    assert report("a")["detections"] == report("b")["detections"]
    info = run_cli("cache", "info", env=env)
    assert info.code == 0 and "job results" in info.stdout
    cleared = run_cli("cache", "clear", env=env)
    assert cleared.code == 0 and "removed" in cleared.stdout
    assert " 0 job results" in run_cli("cache", "info", env=env).stdout


@pytest.mark.slow
def test_fail_fast_stops_the_batch(run_cli, sample, tmp_path):
    (tmp_path / "a-broken.mp4").write_text("not a video")
    shutil.copy(sample, tmp_path / "b-good.mp4")
    result = run_cli("analyze", tmp_path / "a-broken.mp4", tmp_path / "b-good.mp4", "--out", tmp_path / "out",
                     *FAST, "--fail-fast")
    assert result.code == 1
    assert not (tmp_path / "out" / "b-good" / "report.json").exists()


@pytest.mark.slow
def test_kill_9_then_rerun_submits_only_unfinished_jobs(sample, clips, tmp_path, runpod_server):
    # 12 s: 12 detection jobs and 2 transcription jobs, two of each endpoint's in flight at a time.
    clip = clips("resume.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=12",
                 "-i", str(sample), "-filter_complex", "[1:a]aloop=loop=1:size=441000[a]", "-map", "0:v",
                 "-map", "[a]", "-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                 "-c:a", "aac")
    args = ["analyze", str(clip), "--config", str(OFFLINE_CONFIG), "--detect-fps", "4", "--yolo-batch", "4",
            "--audio-chunk", "6", "--backend", "runpod", "--log-format", "none"]
    srv = runpod_server  # shared (conftest.py): its counters include other tests' jobs, so only differences count

    def run(out: Path, cache: Path, **popen):
        env = {**os.environ, **srv.env(RUNPOD_CONCURRENCY="2"), "VIDAGENT_CACHE_DIR": str(cache)}
        return subprocess.Popen([sys.executable, "-m", "vidagent", *args, "--out", str(out)], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)

    def submitted() -> int:
        return sum(ep["accepted"]["run"] for ep in srv.admin("stats")["endpoints"].values())

    before = submitted()
    reference = run(tmp_path / "ref", tmp_path / "cache-ref")
    assert reference.wait(timeout=300) == 0, reference.communicate()
    total = submitted() - before

    before = submitted()
    victim = run(tmp_path / "out", tmp_path / "cache")
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "cache" / "jobs").glob("*/*.json"))) < 3:  # results it has kept
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    while srv.busy():  # the jobs it left behind finish on the server; they are lost to it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    killed_sent = submitted() - before
    assert killed_sent < total

    before = submitted()
    rerun = run(tmp_path / "out", tmp_path / "cache")
    assert rerun.wait(timeout=300) == 0, rerun.communicate()
    resent = submitted() - before
    report = json.loads((tmp_path / "out" / "resume" / "report.json").read_text())
    ref = json.loads((tmp_path / "ref" / "resume" / "report.json").read_text())
    cached = sum(u["cached_jobs"] for u in report["usage"].values())
    assert cached > 0 and resent == total - cached  # only what had not finished was sent again
    assert resent < total
    for key in ("detections", "transcript", "media", "warnings"):
        assert report[key] == ref[key]


@pytest.mark.slow
def test_a_failed_stage_writes_a_partial_report_exits_1_and_the_index_says_partial(run_cli, sample, tmp_path):
    # The transcriber cannot load its model (bad input: never retried); detection works.
    out = tmp_path / "out"
    result = run_cli("analyze", sample, "--out", out, *FAST, "--whisper-model", str(tmp_path / "no-such-model"))
    assert result.code == 1, result
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("vidagent: error:")]
    assert len(errors) == 1 and "partial report" in errors[0] and "transcribe failed" in errors[0], result.stderr
    report = json.loads((out / "sample" / "report.json").read_text())
    assert report["status"] == "partial" and "cannot be loaded" in report["failed_stages"]["transcribe"]
    assert len(report["detections"]) == 10 and report["transcript"]["segments"] == []
    assert (out / "sample" / "report.html").exists()
    [row] = json.loads((out / "index.json").read_text())["videos"]
    assert row["status"] == "partial" and "transcribe failed" in row["error"]
    with open(out / "index.csv", newline="") as handle:
        assert [r["status"] for r in csv.DictReader(handle)] == ["partial"]


@pytest.mark.slow
def test_fail_fast_stops_at_a_partial_video(run_cli, sample, tmp_path):
    copies = []
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        shutil.copy(sample, tmp_path / name)
        copies.append(tmp_path / name)
    out = tmp_path / "out"
    result = run_cli("analyze", *copies, "--out", out, *FAST, "--fail-fast", "--whisper-model", str(tmp_path / "none"))
    assert result.code == 1, result
    rows = json.loads((out / "index.json").read_text())["videos"]
    assert [r["status"] for r in rows] == ["partial"]
