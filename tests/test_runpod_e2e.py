"""`vidagent analyze --backend runpod` against `vidagent serve` running the real endpoint
handlers as RunPod SDK workers: real HTTP, real processes, real (offline) models."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import OFFLINE_CONFIG, ROOT
from text_match import TINY_EN_MAX_WER, assert_words

pytestmark = pytest.mark.slow

KEY = "rp_e2e_SECRET_do_not_print_4242"
FAST = ("--config", OFFLINE_CONFIG, "--detect-fps", "2", "--yolo-batch", "4", "--progress", "lines", "--no-cache")


class Server:
    """`vidagent serve` with the real yolo and whisper shims. Each worker holds as many jobs
    at once as its shim does in production (`concurrency`: that many instead)."""

    def __init__(self, *args: str, workers: int = 1, extra_env: dict | None = None, concurrency: int | None = None,
                 handlers: tuple[str, str] = ("endpoints/yolo/handler.py", "endpoints/whisper/handler.py")):
        self.stderr_path = Path(os.environ["VIDAGENT_CACHE_DIR"]).parent / f"serve-{time.time_ns()}.log"
        held = {"VIDAGENT_WORKER_CONCURRENCY": str(concurrency)} if concurrency else {}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vidagent", "serve", "--port", "0", "--api-key", KEY,
             "--endpoint", f"yolo-ep={handlers[0]}:{workers}",
             "--endpoint", f"whisper-ep={handlers[1]}:{workers}", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w"), text=True,
            env={**os.environ, "VIDAGENT_YOLO_MODEL": "offline:yolo11n-random",
                 "VIDAGENT_WHISPER_MODEL": "offline:tiny.en", **held, **(extra_env or {})},
        )
        line = self.proc.stdout.readline()
        assert line, self.stderr_path.read_text()[-3000:]
        self.base_url = json.loads(line)["base_url"]

    def env(self, **extra) -> dict:
        return {"RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": self.base_url,
                "RUNPOD_YOLO_ENDPOINT_ID": "yolo-ep", "RUNPOD_WHISPER_ENDPOINT_ID": "whisper-ep", **extra}

    def admin(self, what: str):
        root = self.base_url.removesuffix("/v2")
        return httpx.get(f"{root}/_vidagent/{what}", headers={"Authorization": KEY}, timeout=10).json()

    def busy(self) -> int:
        """Jobs queued or running on the two endpoints, as RunPod's /health counts them."""
        return sum(sum(httpx.get(f"{self.base_url}/{ep}/health", headers={"Authorization": KEY},
                                 timeout=10).json()["jobs"][k] for k in ("inQueue", "inProgress"))
                   for ep in ("yolo-ep", "whisper-ep"))

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.stderr_path.read_text()


@pytest.fixture(scope="module")
def server(runpod_server):
    return runpod_server  # conftest.py: one per session


def comparable(report: dict) -> dict:
    """What must not depend on the backend: everything but timings, usage, the clock and
    the record of where each endpoint ran."""
    return {k: v for k, v in report.items() if k not in ("timings", "usage", "created_at", "settings", "backends")}


def analyze(run_cli, video, out, env, *extra):
    result = run_cli("analyze", video, "--out", out, *FAST, *extra, env=env)
    assert result.code == 0, result
    return result, json.loads((Path(out) / Path(video).stem / "report.json").read_text())


def test_runpod_report_equals_local_report(server, run_cli, sample, sample_truth, tmp_path):
    local_result, local = analyze(run_cli, sample, tmp_path / "local", {}, "--backend", "local")
    remote_result, remote = analyze(run_cli, sample, tmp_path / "remote", server.env(), "--backend", "runpod")
    assert comparable(remote) == comparable(local)
    assert local["detections"]
    assert_words(" ".join(s["text"] for s in local["transcript"]["segments"]), sample_truth["text"],
                 max_wer=TINY_EN_MAX_WER)
    usage = remote["usage"]
    assert usage["yolo"]["jobs"] == 5 and usage["yolo"]["items"] == 20  # 20 frames in batches of 4
    assert usage["whisper"]["jobs"] == 1
    assert usage["yolo"]["execution_s"] > 0 and usage["whisper"]["execution_s"] > 0
    # backend auto picks runpod once the endpoint ids are set
    auto_result, auto = analyze(run_cli, sample, tmp_path / "auto", server.env())
    assert comparable(auto) == comparable(local) and auto["usage"]["yolo"]["jobs"] == 5
    # The key appears nowhere: not in output, logs, reports or the search index.
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert KEY.encode() not in written
    for text in (remote_result.stdout, remote_result.stderr, auto_result.stdout, auto_result.stderr):
        assert KEY not in text


def test_wrong_key_is_one_line_and_exit_2(server, run_cli, sample, tmp_path):
    result = run_cli("analyze", sample, "--out", tmp_path, *FAST, env=server.env(RUNPOD_API_KEY="wrong"))
    assert result.code == 2, result
    assert "RunPod rejected the API key (401)" in result.stderr and "Traceback" not in result.stderr
    assert "wrong" not in result.stderr


def test_faults_and_a_killed_worker_do_not_change_the_report(server, run_cli, sample, tmp_path):
    _, expected = analyze(run_cli, sample, tmp_path / "clean", server.env(), "--backend", "runpod")
    faulty = Server("--fault-5xx", "0.1", "--fault-429", "0.05", "--fault-seed", "7", workers=2)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidagent", "analyze", str(sample), "--out", str(tmp_path / "faulty"),
             *map(str, FAST), "--backend", "runpod"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **faulty.env()},
        )
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            busy = [w for w in faulty.admin("workers")["workers"] if w["alive"] and w["jobs_in_progress"]]
            if busy:
                killed = busy[0]
                os.kill(killed["pid"], signal.SIGKILL)
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert killed is not None, "no worker was ever seen busy"
        stats = faulty.admin("stats")
        assert sum(ep["retried"] for ep in stats["endpoints"].values()) >= 1
        assert sum(stats["faults"]["injected"].values()) >= 1
    finally:
        log = faulty.stop()
    report = json.loads((tmp_path / "faulty" / "sample" / "report.json").read_text())
    assert comparable(report) == comparable(expected)
    assert report["usage"]["yolo"]["items"] == expected["usage"]["yolo"]["items"]  # nothing lost or doubled
    assert KEY not in log
