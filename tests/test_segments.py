"""The segment path against the single-machine path, on clips ffmpeg made at the rates
cameras record (23.976, 29.97, 59.94 fps and variable), read over HTTP from a real server
process that honours Range (tests/range_server.py), the segment worker in this process.

Reports through segments must equal the single-machine reports in detections and frame
times exactly; transcripts must hear the spoken words as well as one machine does (case,
punctuation and digits aside, within WORDS_SLACK for the tiny model hearing shorter
stretches), starts within 0.3 s, and no word doubled or lost at a boundary. `vidagent serve` runs the same worker as a RunPod
worker in tests/test_segments_serve.py.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

import pytest

from conftest import OFFLINE_CONFIG, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))
from make_clips import make  # noqa: E402
from range_server import RangeServer  # noqa: E402

RATES = ("c23976", "c2997", "c5994", "vfr")
SECONDS = 12.0
SEGMENT_S = "4"  # three segments in 12 s: boundaries near 4 and 8 s, inside or beside speech
FAST = ("--config", OFFLINE_CONFIG, "--detect-size", "128", "--detect-fps", "5", "--format", "json",
        "--backend", "local")
SECRET = "X-Amz-Signature=5ecre7"
WORDS_SLACK = 2  # words the tiny model may hear differently through segments (it hears shorter stretches)
START_TOLERANCE_S = 0.3


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("segment-clips")
    for name in RATES:
        make(folder, name, SECONDS, keyframe_s=1.0)
    return folder


@pytest.fixture(scope="module")
def server(clip_dir):
    srv = RangeServer(clip_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def detected(clip_dir, server, tmp_path_factory, run_cli_module) -> tuple[Path, Path, object]:
    """Detections only, every rate: the single-machine batch and the same clips by URL through segments."""
    single, segmented = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("segmented")
    result = run_cli_module("analyze", clip_dir, "--out", single, *FAST, "--no-cache", "--segments", "off",
                            "--no-transcribe")
    assert result.code == 0, result
    urls = [server.url(f"{name}-k1.mp4", SECRET) for name in RATES]
    result = run_cli_module("analyze", *urls, "--out", segmented, *FAST, "--segments", "on",
                            "--segment-seconds", SEGMENT_S, "--no-transcribe")
    assert result.code == 0, result
    return single, segmented, result


@pytest.fixture(scope="module")
def transcribed(clip_dir, server, tmp_path_factory, run_cli_module):
    """`transcribed(name)`: (single-machine report, segment report) of one clip, transcript only."""
    made: dict[str, tuple[dict, dict]] = {}

    def get(name: str) -> tuple[dict, dict]:
        if name not in made:
            single, segmented = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("segmented")
            for out, source, path in ((single, clip_dir / f"{name}-k1.mp4", "off"),
                                      (segmented, server.url(f"{name}-k1.mp4", SECRET), "on")):
                result = run_cli_module("analyze", source, "--out", out, *FAST, "--no-detect", "--segments", path,
                                        "--segment-seconds", SEGMENT_S, "--no-cache")
                assert result.code == 0, result
            made[name] = (report(single, name), report(segmented, name))
        return made[name]

    return get


def report(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}-k1" / "report.json").read_text())


@pytest.mark.parametrize("name", RATES)
def test_segment_reports_equal_single_machine_detections_and_frame_times(name, detected):
    single, segmented = report(detected[0], name), report(detected[1], name)
    assert segmented["status"] == "complete", segmented["failed_stages"]
    assert segmented["timings"]["segments"] >= 3  # several boundaries were crossed
    assert [d["t"] for d in segmented["detections"]] == [d["t"] for d in single["detections"]]
    assert segmented["detections"] == single["detections"]
    assert segmented["tracks"] == single["tracks"]
    assert segmented["media"]["duration_s"] == single["media"]["duration_s"]


def truth_words() -> list[str]:
    """What make_clips has spoken in a SECONDS clip: the committed sentences, in order."""
    from make_clips import every

    listing = json.loads((ROOT / "tests" / "data" / "sentences.json").read_text())["sentences"]
    spoken = listing[: len(every(int(SECONDS // 5), 5.0, first_s=1.0))]
    return [w for entry in spoken for w in normalise(entry["text"])]


_NUMBERS = dict(enumerate("zero one two three four five six seven eight nine ten".split()))


def normalise(text: str) -> list[str]:
    tokens = re.sub(r"[^\w' ]+", " ", text.lower()).split()
    return [_NUMBERS.get(int(t), t) if t.isdigit() else t for t in tokens]


def heard(words_: list[str], truth: list[str]) -> int:
    """How many of the truth's words a transcript has, in order."""
    return sum(block.size for block in difflib.SequenceMatcher(a=truth, b=words_, autojunk=False).get_matching_blocks())


# The audio is the same track in every clip; the slow matrix hears it beside each video rate.
@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "c2997" else pytest.mark.slow) for n in RATES])
def test_segment_transcripts_have_the_same_words_none_lost_or_doubled(name, transcribed):
    single_report, segment_report = transcribed(name)
    assert segment_report["status"] == "complete", segment_report["failed_stages"]
    truth = truth_words()
    single = [w for seg in single_report["transcript"]["segments"] for w in normalise(seg["text"])]
    segmented = [w for seg in segment_report["transcript"]["segments"] for w in normalise(seg["text"])]
    shown = f"truth: {' '.join(truth)} / single: {' '.join(single)} / segments: {' '.join(segmented)}"
    # The tiny model mishears a word or two differently when it hears a shorter stretch:
    # segments must hear the spoken words as well as one machine does, within WORDS_SLACK.
    assert heard(segmented, truth) >= heard(single, truth) - WORDS_SLACK, shown
    assert heard(segmented, truth) >= 0.75 * len(truth), shown
    # None doubled at a boundary: no word repeated the single machine does not repeat, and
    # no more words than were spoken (give or take the model splitting one).
    repeats = lambda ws: {(x, y) for x, y in zip(ws, ws[1:]) if x == y}  # noqa: E731
    assert repeats(segmented) <= repeats(single), shown
    assert len(segmented) <= len(truth) + WORDS_SLACK, shown
    # Segments that begin with the same word begin within START_TOLERANCE_S of each other.
    first_word = lambda seg: normalise(seg["text"])[0]  # noqa: E731
    theirs = single_report["transcript"]["segments"]
    for seg in segment_report["transcript"]["segments"]:
        alike = [s["start"] for s in theirs if first_word(s) == first_word(seg)]
        if alike:
            assert min(abs(t - seg["start"]) for t in alike) <= START_TOLERANCE_S, (seg, theirs)


def test_usage_records_the_segments_and_their_worker_time(detected, transcribed):
    rep = report(detected[1], "c2997")
    usage = rep["usage"]["segment"]
    assert usage["jobs"] == rep["timings"]["segments"] == 3
    assert usage["execution_s"] > 0 and rep["timings"]["segment_decode_s"] > 0
    assert transcribed("c2997")[1]["timings"]["segment_transcribe_s"] > 0
    assert set(rep["usage"]) == {"segment"}  # nothing was detected or transcribed here
    assert rep["backends"] == {"segment": "local"}


def test_the_url_is_shown_without_its_signature(detected):
    _, out, result = detected
    assert "5ecre7" not in result.stdout + result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert b"5ecre7" not in path.read_bytes(), path
    rep = report(out, "c2997")
    assert rep["media"]["path"].endswith("/c2997-k1.mp4") and rep["media"]["file_name"] == "c2997-k1.mp4"


def test_probe_reads_the_header_and_index_not_the_file(tmp_path):
    from vidagent.media.remote import BLOCK
    from vidagent.segments.keyframes import survey
    from vidagent.segments.source import MediaURL

    import subprocess
    big = tmp_path / "big.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30:duration=20",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", str(big)], check=True)
    srv = RangeServer(tmp_path)
    try:
        before = srv.stats()["bytes"]
        found = survey(MediaURL(srv.url("big.mp4")))
        served = srv.stats()["bytes"] - before
    finally:
        srv.stop()
    size = big.stat().st_size
    assert size > 8 * BLOCK
    assert found.indexed and len(found.keyframes) == 20  # one a second, from the index
    assert served == found.bytes_read <= 4 * BLOCK, (served, size)


def test_a_rerun_sends_no_segment_again_even_with_a_new_signature(server, tmp_path, run_cli):
    url = server.url("c2997-k1.mp4")
    common = ("--out", tmp_path / "a", *FAST, "--segments", "on", "--segment-seconds", SEGMENT_S, "--no-transcribe")
    first = run_cli("analyze", url + "?sig=one", *common)
    second = run_cli("analyze", url + "?sig=two", *common)
    assert first.code == 0 and second.code == 0, (first, second)
    rep = json.loads((tmp_path / "a" / "c2997-k1" / "report.json").read_text())
    assert rep["usage"]["segment"]["cached_jobs"] == rep["usage"]["segment"]["jobs"] == 3


@pytest.mark.parametrize("flags, query, expected", [
    ((), "expires=1", "access denied (HTTP 403): the presigned URL has expired"),
    (("--no-range",), "", "the server ignores Range requests"),
])
def test_url_faults_are_one_line_naming_the_video(flags, query, expected, clip_dir, tmp_path, run_cli):
    srv = RangeServer(clip_dir, *flags)
    try:
        result = run_cli("analyze", srv.url("c2997-k1.mp4", query), "--out", tmp_path, *FAST, "--segments", "on")
    finally:
        srv.stop()
    assert result.code == 1, result
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and expected in lines[0] and "c2997-k1.mp4" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_url_is_one_line(tmp_path, run_cli):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("analyze", f"http://127.0.0.1:{port}/talk.mp4", "--out", tmp_path, *FAST, "--segments", "on")
    assert result.code == 1, result
    assert "http://127.0.0.1" in result.stderr and "talk.mp4: cannot be reached" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_segment_that_cannot_be_read_is_retried_alone_then_leaves_a_partial_report(tmp_path, run_cli):
    import subprocess

    import av

    from vidagent.media.remote import BLOCK

    clip = tmp_path / "wide.mp4"  # big enough that one read block holds well under a second
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30000/1001:duration=12",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", str(clip)], check=True)
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        placed = [(e.pos, float(e.timestamp * video.time_base)) for e in video.index_entries]
    # A block that only segment 2 (4-8 s) reads: its neighbours read at most ~1 s past their ends.
    block = next(b for b in range(placed[-1][0] // BLOCK)
                 if all(5.2 <= t <= 7.8 for pos, t in placed if b * BLOCK <= pos < (b + 1) * BLOCK)
                 and any(b * BLOCK <= pos < (b + 1) * BLOCK for pos, _ in placed))
    srv = RangeServer(tmp_path, "--fail-bytes", f"{block * BLOCK}-{block * BLOCK}")
    try:
        result = run_cli("analyze", srv.url("wide.mp4"), "--out", tmp_path / "out", *FAST, "--segments", "on",
                         "--segment-seconds", SEGMENT_S, "--no-transcribe", "--no-cache")
    finally:
        srv.stop()
    assert result.code == 1, result
    rep = json.loads((tmp_path / "out" / "wide" / "report.json").read_text())
    assert rep["status"] == "partial"
    failed = rep["failed_stages"]["segment"]
    assert failed.startswith("1 job(s) failed (4.0-8.0s has no results)"), failed
    assert "segment 2 (4.0-8.0s)" in failed and "cannot be read (HTTP 500)" in failed
    assert rep["usage"]["segment"]["jobs"] == 2  # the other two finished, once each
    times = [d["t"] for d in rep["detections"]]
    assert times and not any(4.0 <= t < 8.0 for t in times) and max(times) > 8.0
    assert "wide.mp4: partial report" in result.stderr and "4.0-8.0s" in result.stderr


# -- pure parts -------------------------------------------------------------------------------


def test_planner_cuts_at_the_nearest_keyframes_and_never_twice_on_one():
    from fractions import Fraction

    from vidagent.segments.planner import plan_segments

    tb = Fraction(1, 1000)
    keys = (0, 2000, 4000, 4500, 9000)  # ms
    ranges = plan_segments(12.0, 3.0, 0, tb, keys)
    # wanted 3.0, 6.0, 9.0 -> nearest keyframes 2.0 (a tie with 4.0: the earlier), 4.5, 9.0
    assert [(r.start_pts, r.end_pts) for r in ranges] == [(0, 2000), (2000, 4500), (4500, 9000), (9000, None)]
    assert [(r.start, r.end) for r in ranges] == [(0.0, 2.0), (2.0, 4.5), (4.5, 9.0), (9.0, 12.0)]
    # 10 s in segments of about 3: three (3.3 s each wanted), not a sliver at the end
    assert [r.start_pts for r in plan_segments(10.0, 3.0, 0, tb, keys)] == [0, 4000, 4500]
    # one keyframe only: one segment, whatever was wanted
    assert [(r.start_pts, r.end_pts) for r in plan_segments(10.0, 2.0, 0, tb, (0,))] == [(0, None)]
    # audio only: cut where wanted
    assert [(r.start, r.end) for r in plan_segments(9.0, 3.0)] == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0)]


def test_segment_length_follows_the_workers_within_bounds():
    from vidagent.segments.planner import segment_seconds

    assert segment_seconds(3600, 60) == 60
    assert segment_seconds(60, 60) == 10  # never below the fixed-cost floor
    assert segment_seconds(36000, 4) == 600
    assert segment_seconds(3600, 60, chosen=5) == 5


def _heard(cut_start, cut_end, *words):
    return {"transcript": {"cut_start": cut_start, "cut_end": cut_end, "chunks": 1, "silent_chunks": 0,
                           "languages": [], "segments": [{"start": words[0][1], "end": words[-1][2], "text": "",
                                                          "words": [{"word": w, "start": s, "end": e}
                                                                    for w, s, e in words]}]}}


def test_words_heard_on_both_sides_of_a_boundary_are_kept_once():
    from vidagent.segments.combine import combine

    # The cut at 5.0 falls inside "across"; each side heard it whole in its overlap.
    first = _heard(0.0, 5.0, (" one", 3.0, 3.4), (" across", 4.8, 5.4), (" two", 5.6, 6.0))
    second = _heard(5.02, 10.0, (" one", 3.9, 4.3), (" across", 4.82, 5.38), (" two", 5.6, 6.0), (" three", 7, 7.5))
    got = combine([first, second], [], None, 0, pause_s=0.8, keep_words=True)
    kept = [w for s in got.segments for w in s.words]
    assert [w.word for w in kept] == [" one", " across", " two", " three"]
    assert kept[0].start == 3.0  # "one" from the side it was spoken on, not the other's overlap
    assert kept[1].start == 4.82  # its middle (5.1) is past the cut: the later side's hearing


def test_a_failed_neighbour_leaves_its_stretch_empty_not_the_rest():
    from vidagent.segments.combine import combine

    second = _heard(5.0, 10.0, (" lost", 4.5, 4.9), (" kept", 5.5, 6.0), (" end", 9.5, 9.9))
    third = _heard(10.0, 15.0, (" end", 9.52, 9.9), (" more", 11.0, 11.5))
    got = combine([None, second, third], [], None, 0, pause_s=0.8, keep_words=False)
    assert [s.text for s in got.segments] == ["kept", "end", "more"]


def test_auto_takes_the_segment_path_only_where_workers_can_read_the_media(tmp_path):
    from vidagent.config import Settings
    from vidagent.pipeline.segmented import uses_segments
    from vidagent.segments.source import MediaURL

    url, local = MediaURL("https://bucket.example/v.mp4?sig=1"), tmp_path / "v.mp4"
    fleet = Settings(runpod_segment_endpoint_id="seg")
    assert uses_segments(fleet, url) and not uses_segments(fleet, local)  # no object store configured
    assert not uses_segments(Settings(), url)  # no segment endpoint: decoded here, over the URL
    assert not uses_segments(fleet.model_copy(update={"backend": "local"}), url)
    assert not uses_segments(fleet.model_copy(update={"local_endpoints": ["segment"]}), url)
    assert uses_segments(Settings(segments="on"), local) and not uses_segments(Settings(segments="off", runpod_segment_endpoint_id="s"), url)
    assert str(url) == "https://bucket.example/v.mp4" and url.stem == "v"
