"""--max-cost: refuse an over-budget run; stop a run whose measured spend reaches it."""

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from conftest import OFFLINE_CONFIG, ROOT

pytestmark = pytest.mark.slow


def pricing(tmp_path, usd_per_s: float, seconds_per_unit: float):
    prices = yaml.safe_load((ROOT / "configs" / "prices.yaml").read_text())
    for pool in prices["pools"].values():
        pool["flex_usd_per_s"] = pool["active_usd_per_s"] = usd_per_s
    profile = yaml.safe_load((ROOT / "configs" / "profile.yaml").read_text())
    for endpoint in (profile[name] for name in ("yolo", "whisper", "vlm")):  # not the segment path's figures
        endpoint["seconds_per_unit"] = seconds_per_unit
        endpoint["seconds_per_request"] = 0
        endpoint["cold_starts_per_run"] = 0
    (tmp_path / "prices.yaml").write_text(yaml.safe_dump(prices))
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(profile))
    return {"VIDAGENT_PRICES_FILE": str(tmp_path / "prices.yaml"),
            "VIDAGENT_PROFILE_FILE": str(tmp_path / "profile.yaml")}


def test_over_budget_estimate_starts_nothing(run_cli, sample, tmp_path):
    env = pricing(tmp_path, usd_per_s=1.0, seconds_per_unit=0.5)
    result = run_cli("analyze", sample, "--out", tmp_path / "out", "--config", OFFLINE_CONFIG,
                     "--max-cost", "0.5", env=env)
    assert result.code == 1, result
    assert "over --max-cost $0.5: nothing was started" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "sample").exists()


def test_local_runs_are_not_priced_at_runpod_rates(analysed_sample):
    report = analysed_sample.report  # analysed with the shipped prices (every pool's rate > 0)
    assert set(report["backends"].values()) == {"local"}
    for used in report["usage"].values():
        assert used["execution_s"] > 0 and used["usd"] is None  # priced runs: tests/test_runpod_client.py


def test_spend_reaching_the_budget_stops_the_run_cleanly(sample, clips, tmp_path):
    from test_runpod_e2e import KEY, Server

    long_clip = clips(
        "budget.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=60",
        "-f", "lavfi", "-i", "sine=duration=60", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac",
    )
    env = pricing(tmp_path, usd_per_s=1.0, seconds_per_unit=0.0)  # estimate ~$0; each GPU second $1
    # Workers whose GPU time is known whatever the machine's load: 0.05 s per image or per
    # second of audio. The sample bills ~3 s (at most twice that, as two jobs can wait on one
    # "GPU"); the 60 s clip ~18 s. A $10 budget lets the first through and stops the second.
    fixed = str(ROOT / "scripts" / "bench_handlers" / "fixed_time.py")
    srv = Server(workers=1, handlers=(fixed, fixed), extra_env={"BENCH_SECONDS_PER_ITEM": "0.05"})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vidagent", "analyze", str(sample), str(long_clip), "--out", str(tmp_path / "out"),
             "--config", str(OFFLINE_CONFIG), "--detect-fps", "5", "--yolo-batch", "4", "--backend", "runpod",
             "--no-cache", "--max-cost", "10", "--log-format", "none"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**os.environ, **srv.env(RUNPOD_CONCURRENCY="2"), **env},
        )
        assert proc.returncode == 1, proc.stderr
        assert "--max-cost $10 reached" in proc.stderr and "Traceback" not in proc.stderr
        assert (tmp_path / "out" / "sample" / "report.json").exists()  # the first video finished
        assert not (tmp_path / "out" / "budget" / "report.json").exists()
        deadline = time.monotonic() + 5
        while True:
            jobs = [httpx.get(f"{srv.base_url}/{ep}/health", headers={"Authorization": KEY}).json()["jobs"]
                    for ep in ("yolo-ep", "whisper-ep")]
            if all(j["inQueue"] == 0 and j["inProgress"] == 0 for j in jobs):
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.1)
    finally:
        srv.stop()
