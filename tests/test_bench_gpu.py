"""scripts/bench_gpu.py in its smoke mode: tiny models on this CPU, through the workers'
handle(), writing a profile that cost-estimate reads. It keeps the GPU run from rotting;
its numbers measure nothing."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from vidagent.cost import load_profile

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "scripts" / "bench_gpu.py"


def bench(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, **(env or {})}, cwd=ROOT)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "profile.yaml"
    proc = bench("--smoke", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_smoke_run_measures_every_worker_through_handle(smoke):
    out, stdout = smoke
    profile = load_profile(out)
    for endpoint in ("yolo", "whisper", "vlm"):
        figure = profile.of(endpoint)
        assert figure.provenance == "measured" and "SMOKE" in figure.gpu and "--smoke" in figure.source
        assert figure.seconds_per_unit > 0
    measurement = profile.measurement
    assert measurement.tool == "scripts/bench_gpu.py" and measurement.versions["ultralytics"]
    runs = {(f["endpoint"], f["config"]): f for f in measurement.figures}
    # YOLO: jobs of 1 and 2 images, asked fp32 and fp16 (a CPU runs fp32), and the floor.
    assert {f["extra"]["asked"] for f in measurement.figures if f["endpoint"] == "yolo"} == {"fp32", "fp16"}
    assert ("yolo", "batch 2 fp32 (asked fp16)") in runs and ("yolo", "floor batch 2 fp16") in runs
    # Whisper: the same fixed number of tokens in every 30 s window, sequential and batched.
    sequential, batched = runs[("whisper", "sequential int8")], runs[("whisper", "batched int8 batch 2")]
    tokens = sequential["extra"]["window_tokens"]
    assert len(tokens) == 2 and len(set(tokens)) == 1 and batched["extra"]["window_tokens"] == tokens
    assert profile.whisper.seconds_per_unit == pytest.approx(batched["per_unit"], rel=1e-3)
    # VLM: the transformers worker, its reply length pinned.
    vlm = runs[("vlm", "transformers concurrency 2")]
    assert vlm["extra"]["completion_tokens"] == 4 and vlm["units"] == 2 * vlm["calls"]
    for text in ("x published", "x the floor", "Cost per hour of video", f"Wrote {out}"):
        assert text in stdout


def test_cost_estimate_reads_the_profile_it_wrote(smoke, run_cli):
    out, _ = smoke
    result = run_cli("cost-estimate", "--duration", "1h", "--caption", "--json", "--profile", out)
    assert result.code == 0, result
    figures = json.loads(result.stdout)["figures"]
    assert {figures[e]["provenance"] for e in ("yolo", "whisper", "vlm")} == {"measured"}
    assert figures["yolo"]["on_pool_gpu"] is False


def test_sections_not_run_keep_the_published_figures(tmp_path):
    out = tmp_path / "vlm-only.yaml"
    proc = bench("--smoke", "--only", "vlm", "--out", out)
    assert proc.returncode == 0, proc.stderr
    profile, published = load_profile(out), load_profile()
    assert profile.vlm.provenance == "measured"
    assert profile.yolo == published.yolo and profile.whisper == published.whisper
    assert "yolo     not measured: not asked for (--only)" in proc.stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here")
def test_without_a_gpu_only_the_smoke_mode_runs(tmp_path):
    proc = bench("--out", tmp_path / "p.yaml")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "bench_gpu.py: no CUDA GPU here; run it on one, or with --smoke"
    assert not (tmp_path / "p.yaml").exists()


def test_a_larger_batch_measured_no_slower_still_gives_a_valid_profile():
    """On a busy machine the jobs of 32 images can take no longer than those of 8: the line
    through them would cost a negative time per image, which no profile may hold."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_gpu import Run
    from bench_gpu_profile import chosen

    runs = [Run("yolo", f"fp32 batch {b}", "image", b * 4, 4, wall_s, "timed calls", {"batch": b, "precision": "fp32"})
            for b, wall_s in ((8, 2.0), (32, 1.9))]
    figures = chosen(runs, "yolo", cuda=False)
    assert figures["seconds_per_unit"] == pytest.approx(1.9 / 4 / 32, abs=1e-6) and figures["seconds_per_request"] == 0
    assert "no line fits" in figures["basis"]
