"""The segment worker as a RunPod worker: `vidagent serve` runs tests/serve_handlers/segment.py
(what endpoints/segment/handler.py runs in the image) under RunPod's SDK with 1 worker (the
segments one after another) and 2 (at once, and one queued), and the client sends it jobs
over RunPod's API, reading the clip from a real
Range server. Its reports must equal the single-machine report; Ctrl-C cancels every
segment job still queued.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from conftest import OFFLINE_CONFIG
from test_interrupts import EXIT_S, Analyze
from test_runpod_e2e import Server
from test_segments import FAST, SECONDS, RangeServer, heard, make, normalise, report, truth_words

SEGMENT_S = "4"


def segment_server(workers: int) -> Server:
    # The yolo and whisper endpoints get no worker: the segment worker runs both models.
    return Server("--endpoint", f"segment-ep=tests/serve_handlers/segment.py:{workers}", workers=0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-clips")
    make(folder, "c2997", SECONDS, keyframe_s=1.0)
    srv = RangeServer(folder)
    yield folder, srv
    srv.stop()


@pytest.fixture(scope="module")
def single(clip, tmp_path_factory, run_cli_module) -> dict:
    out = tmp_path_factory.mktemp("single")
    result = run_cli_module("analyze", clip[0] / "c2997-k1.mp4", "--out", out, *FAST, "--segments", "off", "--no-cache")
    assert result.code == 0, result
    return report(out, "c2997")


@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.slow), 2])
def test_through_serve_the_report_equals_the_single_machine_one(workers, clip, single, tmp_path, run_cli):
    srv = segment_server(workers)
    try:
        env = {**srv.env(RUNPOD_SEGMENT_ENDPOINT_ID="segment-ep")}
        result = run_cli("analyze", clip[1].url("c2997-k1.mp4", "X-Amz-Signature=abc"), "--out", tmp_path,
                         "--config", OFFLINE_CONFIG, "--detect-size", "128", "--detect-fps", "5", "--format", "json",
                         "--segment-seconds", SEGMENT_S, "--no-cache", env=env)
    finally:
        log = srv.stop()
    assert result.code == 0, (result, log[-3000:])
    assert "backends: segment runpod" in result.stderr  # auto: a URL and a segment endpoint on RunPod
    rep = report(tmp_path, "c2997")
    assert rep["backends"] == {"segment": "runpod"}
    assert rep["detections"] == single["detections"] and rep["tracks"] == single["tracks"]
    usage = rep["usage"]["segment"]
    assert usage["jobs"] == rep["timings"]["segments"] == 3 and usage["execution_s"] > 0
    truth = truth_words()
    got = [w for seg in rep["transcript"]["segments"] for w in normalise(seg["text"])]
    theirs = [w for seg in single["transcript"]["segments"] for w in normalise(seg["text"])]
    assert heard(got, truth) >= heard(theirs, truth) - 2 and len(got) <= len(truth) + 2, (got, theirs)
    assert "abc" not in json.dumps(rep) and "abc" not in result.stderr


@pytest.mark.slow
def test_ctrl_c_cancels_every_segment_job_still_queued(clip, tmp_path):
    import httpx

    srv = segment_server(1)
    try:
        def health() -> dict:
            return httpx.get(f"{srv.base_url}/segment-ep/health", headers={"Authorization": srv.env()["RUNPOD_API_KEY"]},
                             timeout=10).json()["jobs"]

        run = Analyze(clip[1].url("c2997-k1.mp4"), "--out", tmp_path, *FAST[:-2], "--backend", "runpod",
                      "--segment-seconds", "1", "--no-cache",
                      env=srv.env(RUNPOD_SEGMENT_ENDPOINT_ID="segment-ep"))
        run.wait_until(lambda: health()["inQueue"] >= 5, "segment jobs queued behind the one worker")
        run.interrupt(signal.SIGINT)
        run.assert_interrupted()
        deadline = time.monotonic() + EXIT_S  # RunPod's view once the client has gone
        while (jobs := health())["inQueue"] or jobs["inProgress"]:
            assert time.monotonic() < deadline, jobs
            time.sleep(0.05)
        assert not (tmp_path / "c2997-k1" / "report.json").exists()
    finally:
        srv.stop()
