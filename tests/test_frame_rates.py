"""The frame-rate matrix: 30 s clips at the rates real cameras produce (23.976, 25, 29.97,
30, 59.94, 120 fps and a phone-like variable rate), every stage on, every output format,
run as one batch locally; the rates whose frame times need the most decimals and the
variable one again through `vidagent serve` (RunPod's API, real workers), where times
travel as JSON.

At most real rates a frame's time has more than six decimals; the first wave keyed frames
by float time and hung on four of these five kinds of clip.
"""

import json
import sys
from pathlib import Path

import pytest

from conftest import OFFLINE_CONFIG, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from make_clips import NAMES, make  # noqa: E402

pytestmark = pytest.mark.slow

SECONDS = 30.0  # long enough for the variable-rate clip's low-light stretch (15-25 s)
FORMATS = "json,srt,vtt,html,captions_srt,captions_vtt,events_srt,events_vtt"
FILES = ["report.json", "transcript.srt", "transcript.vtt", "report.html", "captions.srt", "captions.vtt",
         "events.srt", "events.vtt"]
EVERY_STAGE = ("--config", OFFLINE_CONFIG, "--caption", "--summary", "--caption-trigger", "person",
               "--format", FORMATS, "--detect-size", "128", "--no-cache", "--jobs", "2")
# Through serve: what the transport adds (JSON round trips of times) shows at these; the
# decoding and sampling of every rate are the local matrix's, on the same code.
SERVED = ("c23976", "c5994", "vfr")
# The tiny VLM has random weights and never stops on its own: a few tokens are enough.
FEW_TOKENS = {"VIDAGENT_VLM_MAX_TOKENS": "8", "VIDAGENT_SUMMARY_MAX_TOKENS": "8"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("matrix")
    for name in NAMES:
        make(folder, name, SECONDS)
    return folder


@pytest.fixture(scope="module")
def local_reports(matrix, tmp_path_factory, run_cli_module):
    out = tmp_path_factory.mktemp("matrix-local")
    result = run_cli_module("analyze", matrix, "--out", out, *EVERY_STAGE, env=FEW_TOKENS)
    assert result.code == 0, result
    return out


def reports_in(out: Path, names=NAMES) -> dict[str, dict]:
    return {name: json.loads((out / name / "report.json").read_text()) for name in names}


def test_every_rate_finishes_with_every_stage_and_every_file(local_reports):
    for name, report in reports_in(local_reports).items():
        assert report["status"] == "complete", (name, report["failed_stages"])
        for file in FILES:
            assert (local_reports / name / file).stat().st_size > 0, (name, file)
        duration = report["media"]["duration_s"]
        times = [d["t"] for d in report["detections"]]
        assert times == sorted(times) and all(0 <= t <= duration for t in times), name
        assert len(times) >= (0.95 if name != "vfr" else 0.875) * 10 * SECONDS, (name, len(times))  # 10 fps
        assert report["captions"] and report["captions"][0]["reason"] == "first", name
        assert report["usage"]["vlm"]["jobs"] == len(report["captions"]) + 1, name  # and the summary
        assert report["summary"] is not None, name
        segments = report["transcript"]["segments"]
        assert len(segments) >= SECONDS // 5 - 2, (name, len(segments))  # a sentence every 5 s, give or take two
        assert all(0 <= s["start"] <= s["end"] <= duration + 0.05 for s in segments), name


def comparable(report: dict) -> dict:
    return {k: report[k] for k in ("status", "detections", "transcript", "captions", "summary", "tracks", "events")}


def test_through_vidagent_serve_the_reports_equal_the_local_ones(matrix, local_reports, run_cli, tmp_path):
    from test_runpod_e2e import Server

    srv = Server("--endpoint", "vlm-ep=endpoints/qwen3-vl/local_handler.py:1", workers=1,
                 extra_env={"VIDAGENT_VLM_MODEL": "offline:qwen3-vl-tiny"})
    try:
        out = tmp_path / "served"
        env = {**srv.env(RUNPOD_VLM_ENDPOINT_ID="vlm-ep"), **FEW_TOKENS}
        result = run_cli("analyze", *(matrix / f"{name}.mp4" for name in SERVED), "--out", out, *EVERY_STAGE,
                         "--backend", "runpod", env=env)
        assert result.code == 0, result
        served, local = reports_in(out, SERVED), reports_in(local_reports)
        for name in SERVED:
            assert comparable(served[name]) == comparable(local[name]), name
    finally:
        log = srv.stop()
    assert "Traceback" not in log
