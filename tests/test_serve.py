"""`vidagent serve`: the job rules on a fake clock, then real servers, real SDK workers, real HTTP.

The integration tests start `python -m vidagent serve` as a user would, read its ready
line, and talk to it with httpx; the workers are the stub handlers in tests/serve_handlers
(and, in the slow test, the real endpoints/*/handler.py) running RunPod's own worker loop.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from text_match import TINY_EN_MAX_WER, assert_words
from vidagent.errors import ConfigError
from vidagent.serve.config import FaultSettings, load_serve_config, parse_endpoint_flag
from vidagent.serve.faults import FaultInjector
from vidagent.serve.jobs import JobStore, Policy

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ROOT / "tests" / "serve_handlers"
KEY = "serve-test-key-5f1c"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


# -- the job store, on a fake clock -----------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def finals():
    return []


@pytest.fixture
def store(clock, finals):
    return JobStore(["ep"], retention_s=10, sync_retention_s=60, clock=clock, on_final=finals.append)


def test_store_tells_its_listener_about_every_change(clock):
    changes = []
    store = JobStore(["ep"], clock=clock, on_change=lambda: changes.append(1))
    job = store.submit("ep", {}, Policy(execution_timeout_s=1))
    assert len(changes) == 1
    store.take("ep", "w1")
    assert store.take("ep", "w2") == [] and len(changes) == 2  # nothing taken, nothing to tell
    clock.advance(1)
    store.tick()
    assert job.status == "TIMED_OUT" and len(changes) == 3


def test_store_completes_a_job_with_runpod_timings(store, clock, finals):
    job = store.submit("ep", {"x": 1})
    assert store.get(job.id).status_body() == {"id": job.id, "status": "IN_QUEUE"}
    clock.advance(1.5)
    assert store.take("ep", "w1") == [job]
    assert job.work_item() == {"id": job.id, "input": {"x": 1}}
    assert store.take("ep", "w2") == []
    clock.advance(2.25)
    assert store.finish("w1", job.id, {"output": {"y": 2}}) is job
    assert job.status_body() == {
        "id": job.id, "status": "COMPLETED", "delayTime": 1500, "executionTime": 2250,
        "workerId": "w1", "output": {"y": 2},
    }
    assert finals == [job]
    assert store.finish("w1", job.id, {"output": 3}) is None  # a second post changes nothing
    assert store.counters["ep"].final["COMPLETED"] == 1 and store.counters["ep"].accepted_run == 1


def test_store_error_fails_the_job_and_keeps_what_the_worker_sent(store):
    job = store.submit("ep", {})
    store.take("ep", "w1")
    store.finish("w1", job.id, {"error": "bad input", "output": {"partial": 1}, "stopPod": True})
    assert job.status == "FAILED"
    assert job.status_body()["error"] == "bad input" and job.status_body()["output"] == {"partial": 1}
    assert "stopPod" not in job.status_body()


def test_store_forgets_results_after_retention_or_a_status_ttl(store, clock):
    done, sync = store.submit("ep", 1), store.submit("ep", 2, sync=True)
    assert sync.id.startswith("sync-")
    store.take("ep", "w1", 2)
    store.finish("w1", done.id, {"output": 1})
    store.finish("w1", sync.id, {"output": 2})
    clock.advance(9.9)
    assert store.get(done.id) is done
    assert store.get(sync.id) is sync  # runsync retention is min(sync_retention_s, retention_s)
    clock.advance(0.2)
    assert store.get(done.id) is None and store.get(sync.id) is None

    kept = store.submit("ep", 3)
    store.take("ep", "w1")
    store.finish("w1", kept.id, {"output": 3})
    store.keep_for(kept.id, 0.5)
    clock.advance(0.6)
    assert store.get(kept.id) is None


def test_store_ttl_removes_queued_and_running_jobs(store, clock):
    running = store.submit("ep", 1, Policy(ttl_s=5))
    queued = store.submit("ep", 2, Policy(ttl_s=5))
    store.take("ep", "w1")
    clock.advance(4.9)
    assert not store.tick()
    clock.advance(0.1)
    assert store.tick()
    assert store.get(running.id) is None and store.get(queued.id) is None
    assert store.pop_stops("w1") == [running.id]  # the worker still running it is told to stop
    assert store.counters["ep"].expired == 2 and store.queued("ep") == 0


def test_store_execution_timeout_stops_the_worker_and_ignores_its_late_result(store, clock):
    job = store.submit("ep", {"a": 1}, Policy(execution_timeout_s=2))
    clock.advance(0.5)
    store.take("ep", "w1")
    clock.advance(1.9)
    assert store.get(job.id).status == "IN_PROGRESS"
    clock.advance(0.1)
    assert store.get(job.id).status == "TIMED_OUT"
    assert job.status_body()["executionTime"] == 2000
    assert store.pop_stops("w1") == [job.id] and store.pop_stops("w1") == []
    assert store.finish("w1", job.id, {"output": "late"}) is None
    assert job.status == "TIMED_OUT"

    assert store.retry(job.id) is job  # RunPod's /retry: same id, same input, fresh state
    assert job.status == "IN_QUEUE" and job.input == {"a": 1} and "executionTime" not in job.status_body()
    assert store.counters["ep"].retried == 1


def test_store_cancel_queued_running_and_finished_jobs(store, clock):
    running, queued = store.submit("ep", 1), store.submit("ep", 2)
    store.take("ep", "w1")
    assert store.cancel(queued.id).status == "CANCELLED"
    assert store.take("ep", "w2") == []  # a cancelled job is never handed out
    assert store.cancel(running.id).status == "CANCELLED"
    assert store.has_stops("w1") and store.pop_stops("w1") == [running.id]
    assert store.finish("w1", running.id, {"output": 1}) is None
    assert store.cancel(running.id).status == "CANCELLED"
    assert store.cancel("no-such-job") is None
    assert store.retry(running.id).status == "CANCELLED"  # only FAILED and TIMED_OUT are retried
    assert store.counters["ep"].final["CANCELLED"] == 2


def test_store_requeues_a_dead_workers_jobs_first(store, clock):
    first, second = store.submit("ep", 1), store.submit("ep", 2)
    store.take("ep", "w1")
    assert store.worker_lost("w1") == [first]
    assert first.status_body() == {"id": first.id, "status": "IN_QUEUE"}
    clock.advance(1)
    assert store.take("ep", "w2", 2) == [first, second]
    assert store.finish("w1", first.id, {"output": "ghost"}) is None
    assert store.finish("w2", first.id, {"output": "ok"}) is first
    assert first.retries == 1 and store.counters["ep"].retried == 1
    assert first.status_body()["workerId"] == "w2"


def test_store_purge_and_stream(store):
    running = store.submit("ep", 0)
    store.take("ep", "w1")
    purged = [store.submit("ep", i) for i in range(3)]
    assert store.purge("ep") == 3
    assert all(store.get(job.id) is None for job in purged)
    assert store.get(running.id).status == "IN_PROGRESS"
    assert not store.add_stream("w2", running.id, "not yours")
    assert store.add_stream("w1", running.id, {"i": 0}) and store.add_stream("w1", running.id, {"i": 1})
    assert store.read_stream(running.id) == [{"i": 0}, {"i": 1}]
    assert store.read_stream(running.id) == []
    assert store.counts("ep") == {"in_queue": 0, "in_progress": 1}


def test_fault_draws_are_reproducible_and_near_their_rates():
    settings = FaultSettings(rate_5xx=0.2, rate_429=0.1, retry_after_s=3, seed=5)
    first, second = FaultInjector(settings), FaultInjector(settings)
    draws = [first.draw() for _ in range(3000)]
    assert draws == [second.draw() for _ in range(3000)]
    statuses = Counter(d.status for d in draws if d is not None)
    assert abs(sum(statuses[s] for s in (500, 502, 503)) / 3000 - 0.2) < 0.03
    assert abs(statuses[429] / 3000 - 0.1) < 0.03
    assert all(d.retry_after_s == 3 for d in draws if d is not None and d.status == 429)
    assert FaultInjector(FaultSettings()).draw() is None
    with pytest.raises(ValueError, match="must not exceed 1"):
        FaultSettings(rate_5xx=0.7, rate_429=0.5)


def test_routes_that_create_jobs_lose_answers_instead_of_refusing_with_a_5xx():
    settings = FaultSettings(rate_5xx=0.3, rate_429=0.2, rate_lost=0.3, seed=2)
    reads, creates = FaultInjector(settings), FaultInjector(settings)
    read_faults = [reads.draw() for _ in range(2000)]
    create_faults = [creates.draw(creates_job=True) for _ in range(2000)]
    assert not any(f.lost for f in read_faults if f) and any(f.status >= 500 for f in read_faults if f)
    assert all(f.lost or f.status == 429 for f in create_faults if f)
    assert abs(sum(1 for f in create_faults if f and f.lost) / 2000 - 0.3) < 0.04
    # the same draws either way: a seed replays the same faults whatever the routes
    assert [bool(f and f.status == 429) for f in read_faults] == [bool(f and f.status == 429) for f in create_faults]


# -- configuration ----------------------------------------------------------------------


def test_config_file_and_flags(tmp_path):
    (tmp_path / "h.py").write_text("")
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "retention_s": 5,
        "faults": {"rate_429": 0.1, "seed": 3},
        "endpoints": {"a": {"handler": "h.py", "workers": 2, "env": {"N": 1, "FLAG": True}}},
    }))
    settings = load_serve_config(
        config, {"faults.rate_5xx": 0.2, "port": None, "retention_s": 7}, [f"b={tmp_path / 'h.py'}:3"]
    )
    assert settings.endpoints["a"].handler == tmp_path / "h.py"  # relative to the file
    assert settings.endpoints["a"].env == {"N": "1", "FLAG": "true"}
    assert settings.endpoints["b"].workers == 3 and settings.port == 0 and settings.retention_s == 7
    assert (settings.faults.rate_5xx, settings.faults.rate_429, settings.faults.seed) == (0.2, 0.1, 3)
    assert parse_endpoint_flag("yolo=endpoints/yolo/handler.py:2") == ("yolo", Path("endpoints/yolo/handler.py"), 2)
    assert parse_endpoint_flag("x=C:handler.py") == ("x", Path("C:handler.py"), None)


@pytest.mark.parametrize(
    "data, flags, message",
    [
        ({"api_key": "secret"}, [], "not read from files"),
        ({"endpoints": {"a": {"handler": "missing.py"}}}, [], "handler script not found"),
        ({"endpoints": {"a": {"handler": "h.py", "wrokers": 2}}}, [], "endpoints.a.wrokers"),
        ({"host": "8.8.8.8"}, ["a=h.py"], "not a loopback address"),
        ({}, [], "no endpoints"),
        ({}, ["bad id=h.py"], "endpoint id"),
        ({}, ["noequals"], "expected ID=PATH"),
    ],
)
def test_config_errors_say_what_to_fix(tmp_path, data, flags, message):
    (tmp_path / "h.py").write_text("")
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_serve_config(config, {}, flags, cwd=tmp_path)


def test_a_bad_setup_exits_2_without_starting_anything(run_cli):
    result = run_cli("serve", "--endpoint", "a=no/such/handler.py", timeout=60)
    assert result.code == 2 and "handler script not found" in result.stderr and result.stdout == ""
    result = run_cli("serve", "--endpoint", f"a={HANDLERS / 'echo.py'}", "--host", "8.8.8.8", timeout=60)
    assert result.code == 2 and "--allow-remote" in result.stderr


def test_a_worker_that_cannot_start_fails_serve_in_one_line(run_cli):
    result = run_cli("serve", "--endpoint", f"ok={HANDLERS / 'echo.py'}", "--endpoint",
                     f"bad={HANDLERS / 'broken.py'}", timeout=60)
    assert result.code == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "endpoint bad" in line and "No module named 'vidagent_no_such_module'" in line


# -- a real server ------------------------------------------------------------------------


class Serve:
    """`vidagent serve` in a subprocess, read the way a script would: the first stdout line."""

    def __init__(self, folder: Path, *args, env: dict | None = None, timeout: float = 60):
        self._stderr_path = folder / "serve.stderr"
        self._stderr = open(self._stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vidagent", "serve", *map(str, args)],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        self.ready = json.loads(self._first_line(timeout))
        self.base_url = self.ready["base_url"]
        self.root = self.base_url.removesuffix("/v2")

    def _first_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if readable:
                line = self.proc.stdout.readline()
                if line:
                    return line
            if self.proc.poll() is not None:
                break
        self.stop()
        pytest.fail(f"vidagent serve did not print its ready line:\n{self.stderr()}")

    def stderr(self) -> str:
        return self._stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    serve = Serve(
        tmp_path_factory.mktemp("serve"),
        "--endpoint", f"echo={HANDLERS / 'echo.py'}:2",
        "--endpoint", f"stream={HANDLERS / 'stream.py'}",
        "--api-key", KEY,
        "--retention-s", "3",
    )
    assert serve.ready["endpoints"] == {"echo": {"workers": 2}, "stream": {"workers": 1}}
    yield serve
    code = serve.stop()
    assert code == 0, serve.stderr()
    assert KEY not in serve.stderr()


@pytest.fixture
def client(server):
    """A client of the shared server, once it is idle with all its workers ready."""
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        _until(lambda: _idle(http, "echo", 2) and _idle(http, "stream", 1), 30, "the server to be idle")
        yield http


def _idle(http: httpx.Client, endpoint: str, workers: int) -> bool:
    health = http.get(f"/{endpoint}/health").json()
    return health["jobs"]["inQueue"] == health["jobs"]["inProgress"] == 0 and health["workers"]["idle"] == workers


def _until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def submit(http: httpx.Client, endpoint: str, job_input, **extra) -> str:
    response = http.post(f"/{endpoint}/run", json={"input": job_input, **extra})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "IN_QUEUE"
    return response.json()["id"]


def wait_status(http: httpx.Client, endpoint: str, job_id: str, statuses: set[str], timeout: float = 15) -> dict:
    def reached():
        body = http.get(f"/{endpoint}/status/{job_id}").json()
        return body if body["status"] in statuses else None

    return _until(reached, timeout, f"job {job_id} to be {'/'.join(sorted(statuses))}")


def wait_gone(http: httpx.Client, endpoint: str, job_id: str, timeout: float) -> None:
    _until(lambda: http.get(f"/{endpoint}/status/{job_id}").status_code == 404, timeout, f"job {job_id} to be gone")


def admin(http: httpx.Client, server: Serve, what: str) -> dict:
    return http.get(f"{server.root}/_vidagent/{what}").json()


def two_jobs_run_side_by_side(http: httpx.Client) -> None:
    """Both echo workers are free: two 1-second jobs land on different workers."""
    ids = [submit(http, "echo", {"sleep": 1}) for _ in range(2)]
    bodies = [wait_status(http, "echo", job_id, FINAL) for job_id in ids]
    assert [b["status"] for b in bodies] == ["COMPLETED"] * 2
    assert bodies[0]["workerId"] != bodies[1]["workerId"]


def test_a_job_completes_with_its_output_and_timings(client, server):
    job_id = submit(client, "echo", {"sleep": 0.3, "n": 1})
    body = wait_status(client, "echo", job_id, FINAL)
    assert body["status"] == "COMPLETED"
    assert body["output"]["echo"] == {"sleep": 0.3, "n": 1}
    assert 0 <= body["delayTime"] < 3000
    assert 300 <= body["executionTime"] < 3000
    workers = admin(client, server, "workers")["workers"]
    assert body["workerId"] in {w["id"] for w in workers if w["endpoint"] == "echo"}
    assert client.post(f"/echo/status/{job_id}").json() == body  # RunPod answers POST too


def test_a_handler_failure_fails_the_job_with_its_message(client):
    raised = client.post("/echo/runsync", json={"input": {"raise": "boom"}}).json()
    assert raised["status"] == "FAILED"
    info = json.loads(raised["error"])  # the SDK's report of a handler exception
    assert info["error_message"] == "boom" and "RuntimeError" in info["error_type"]
    clean = client.post("/echo/runsync", json={"input": {"error": "bad input"}}).json()
    assert clean["status"] == "FAILED" and clean["error"] == "bad input"


def test_runsync_waits_then_answers_with_the_job_so_far(client):
    done = client.post("/echo/runsync", json={"input": {"sleep": 0.1}}).json()
    assert done["status"] == "COMPLETED" and done["id"].startswith("sync-")
    assert done["output"]["echo"]["sleep"] == 0.1
    started = time.monotonic()
    pending = client.post("/echo/runsync?wait=1000", json={"input": {"sleep": 30}}).json()
    assert 0.9 < time.monotonic() - started < 5
    assert pending["status"] in ("IN_QUEUE", "IN_PROGRESS")
    assert client.post(f"/echo/cancel/{pending['id']}").json() == {"id": pending["id"], "status": "CANCELLED"}


def test_stream_hands_out_each_partial_output_once(client):
    job_id = submit(client, "stream", {"chunks": 4, "gap": 0.1})
    seen = []

    def finished():
        body = client.get(f"/stream/stream/{job_id}").json()
        seen.extend(chunk["output"] for chunk in body["stream"])
        return body["status"] in FINAL and not body["stream"]

    _until(finished, 15, "the stream to end")
    assert seen == [{"index": i} for i in range(4)]
    status = client.get(f"/stream/status/{job_id}").json()
    assert status["status"] == "COMPLETED" and status["output"] == seen  # return_aggregate_stream


def test_queue_cancel_ttl_purge_and_health(client, server):
    busy = [submit(client, "echo", {"sleep": 30}) for _ in range(2)]
    for job_id in busy:
        wait_status(client, "echo", job_id, {"IN_PROGRESS"})
    queued = submit(client, "echo", {"sleep": 0})
    short_lived = submit(client, "echo", {"sleep": 0}, policy={"ttl": 400})
    purged = [submit(client, "echo", {"sleep": 0}) for _ in range(3)]
    health = client.get("/echo/health").json()
    assert health["jobs"]["inProgress"] == 2 and health["jobs"]["inQueue"] == 5
    assert health["workers"] == {"idle": 0, "initializing": 0, "ready": 0, "running": 2, "throttled": 0, "unhealthy": 0}

    assert client.post(f"/echo/cancel/{queued}").json() == {"id": queued, "status": "CANCELLED"}
    assert client.get(f"/echo/status/{queued}").json() == {"id": queued, "status": "CANCELLED"}
    wait_gone(client, "echo", short_lived, timeout=5)  # ttl passed while queued
    assert client.post("/echo/purge-queue").json() == {"removed": 3, "status": "completed"}
    assert all(client.get(f"/echo/status/{job_id}").status_code == 404 for job_id in purged)

    # In-progress jobs: cancelled at once; each worker gets a stop signal and is free again.
    for job_id in busy:
        assert client.post(f"/echo/cancel/{job_id}").json()["status"] == "CANCELLED"
    two_jobs_run_side_by_side(client)
    assert all(client.get(f"/echo/status/{job_id}").json()["status"] == "CANCELLED" for job_id in busy)
    stats = admin(client, server, "stats")["endpoints"]["echo"]
    assert stats["expired"] >= 1 and stats["purged"] >= 3 and stats["final"]["CANCELLED"] >= 3


def test_execution_timeout_times_out_the_job_and_frees_its_worker(client):
    job_id = submit(client, "echo", {"sleep": 30}, policy={"executionTimeout": 400})
    body = wait_status(client, "echo", job_id, FINAL, timeout=10)
    assert body["status"] == "TIMED_OUT"
    assert 400 <= body["executionTime"] < 2000 and "output" not in body

    # /retry runs it again under the same id, with the same input and policy.
    assert client.post(f"/echo/retry/{job_id}").json() == {"id": job_id, "status": "IN_QUEUE"}
    assert wait_status(client, "echo", job_id, FINAL, timeout=10)["status"] == "TIMED_OUT"
    done = client.post("/echo/runsync", json={"input": {}}).json()
    assert client.post(f"/echo/retry/{done['id']}").status_code == 400  # only FAILED or TIMED_OUT

    two_jobs_run_side_by_side(client)
    assert client.get(f"/echo/status/{job_id}").json()["status"] == "TIMED_OUT"


def test_finished_jobs_expire_after_retention(client):
    job_id = submit(client, "echo", {})
    wait_status(client, "echo", job_id, {"COMPLETED"})
    finished = time.monotonic()
    wait_gone(client, "echo", job_id, timeout=10)
    assert time.monotonic() - finished > 1.5  # --retention-s 3

    job_id = submit(client, "echo", {})
    wait_status(client, "echo", job_id, {"COMPLETED"})
    assert client.get(f"/echo/status/{job_id}?ttl=100").status_code == 200
    wait_gone(client, "echo", job_id, timeout=2)


def test_keys_limits_and_unknown_names(client, server):
    with httpx.Client(base_url=server.base_url, timeout=30) as anonymous:
        assert anonymous.post("/echo/run", json={"input": {}}).status_code == 401
        assert anonymous.get("/echo/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert anonymous.get("/echo/health", headers={"Authorization": KEY}).status_code == 200  # bare key
        assert anonymous.get(f"{server.root}/_vidagent/stats").status_code == 401
    accepted = admin(client, server, "stats")["endpoints"]["echo"]["accepted"]

    too_big = b'{"input": {"blob": "' + b"x" * 10_000_000 + b'"}}'
    response = client.post("/echo/run", content=too_big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "10 MB" in response.json()["error"]
    big = client.post("/echo/runsync", json={"input": {"blob": "x" * 10_500_000, "size_only": True}}).json()
    assert big["status"] == "COMPLETED" and big["output"]["bytes"] > 10_500_000
    response = client.post("/echo/runsync", content=too_big + b" " * 10_000_000, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "20 MB" in response.json()["error"]

    assert client.post("/nope/run", json={"input": {}}).status_code == 404
    assert "not found" in client.get("/nope/health").json()["error"]
    assert client.get("/echo/status/no-such-job").status_code == 404
    assert client.post("/echo/run", content=b"{not json").status_code == 400
    assert client.post("/echo/run", json={"inputs": {}}).status_code == 400
    assert client.post("/echo/run", json={"input": {}, "policy": {"executionTimeout": -1}}).status_code == 400
    after = admin(client, server, "stats")["endpoints"]["echo"]["accepted"]
    assert after == {"run": accepted["run"], "runsync": accepted["runsync"] + 1}


def test_a_worker_killed_mid_job_is_replaced_and_its_job_retried(client, server):
    job_id = submit(client, "echo", {"sleep": 2})
    wait_status(client, "echo", job_id, {"IN_PROGRESS"})
    [victim] = [w for w in admin(client, server, "workers")["workers"] if job_id in w["jobs_in_progress"]]
    retried = admin(client, server, "stats")["endpoints"]["echo"]["retried"]
    os.kill(victim["pid"], signal.SIGKILL)

    body = wait_status(client, "echo", job_id, FINAL, timeout=20)
    assert body["status"] == "COMPLETED" and body["workerId"] != victim["id"]
    assert admin(client, server, "stats")["endpoints"]["echo"]["retried"] == retried + 1

    def replaced():
        workers = {w["id"]: w for w in admin(client, server, "workers")["workers"] if w["endpoint"] == "echo"}
        live = [w for w in workers.values() if w["alive"] and w["ready"]]
        return len(live) == 2 and not workers[victim["id"]]["alive"] and workers[victim["id"]]["exit_code"] == -9

    _until(replaced, 30, "a replacement worker")


def test_a_webhook_gets_the_final_status(client):
    received: queue.Queue = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        job_id = submit(client, "echo", {"n": 7}, webhook=f"http://127.0.0.1:{hook.server_port}/done")
        body = received.get(timeout=15)
    finally:
        hook.shutdown()
    assert body["id"] == job_id and body["status"] == "COMPLETED" and body["output"]["echo"] == {"n": 7}


# -- fault injection, on a server of its own -------------------------------------------


def test_fault_flags_answer_the_configured_statuses(tmp_path):
    serve = Serve(
        tmp_path, "--endpoint", f"echo={HANDLERS / 'echo.py'}", "--fault-5xx", "0.25", "--fault-429", "0.25",
        "--fault-retry-after-s", "2", "--fault-delay-ms", "20", "--fault-seed", "7",
        env={"VIDAGENT_SERVE_API_KEY": KEY},
    )
    try:
        with httpx.Client(base_url=serve.base_url, headers={"Authorization": KEY}, timeout=30) as http:
            statuses: Counter[int] = Counter()
            started = time.monotonic()
            for _ in range(80):
                response = http.get("/echo/health")
                statuses[response.status_code] += 1
                if response.status_code == 429:
                    assert response.headers["Retry-After"] == "2"
            assert time.monotonic() - started >= 80 * 0.02
            assert set(statuses) <= {200, 429, 500, 502, 503}
            server_errors = statuses[500] + statuses[502] + statuses[503]
            assert 8 <= server_errors <= 35 and 8 <= statuses[429] <= 35 and statuses[200] >= 20

            stats = [http.get(f"{serve.root}/_vidagent/stats") for _ in range(20)]
            assert all(r.status_code == 200 for r in stats)  # admin routes are never faulted
            injected = stats[-1].json()["faults"]["injected"]
            assert {int(code): n for code, n in injected.items()} == {c: n for c, n in statuses.items() if c != 200}

            def retried(request):
                return _until(lambda: (r := request()).status_code == 200 and r, 10, "a request that is not faulted")

            # The worker job API is never faulted: a job that gets in runs normally.
            job_id = retried(lambda: http.post("/echo/run", json={"input": {"n": 1}})).json()["id"]
            _until(lambda: retried(lambda: http.get(f"/echo/status/{job_id}")).json()["status"] == "COMPLETED",
                   15, "the job to complete")
            pids = [w["pid"] for w in http.get(f"{serve.root}/_vidagent/workers").json()["workers"]]
            assert http.get(f"{serve.root}/_vidagent/stats").json()["endpoints"]["echo"]["accepted"]["run"] == 1
    finally:
        code = serve.stop(signal.SIGINT)
    assert code == 0, serve.stderr()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# -- the real endpoints ----------------------------------------------------------------


@pytest.mark.slow
def test_the_real_endpoint_handlers_run_under_serve(tmp_path, sample, sample_truth, yolo_model_path):
    from vidagent.media.audio import AudioChunk
    from vidagent.media.probe import probe
    from vidagent.media.sampler import FrameSpec, SampledFrame, extract

    items = list(extract(sample, probe(sample), [FrameSpec("detect", 1, 640)], 60.0))
    frames = [i for i in items if isinstance(i, SampledFrame)][:2]
    audio = next(i for i in items if isinstance(i, AudioChunk))
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({"endpoints": {
        "yolo": {"handler": str(ROOT / "endpoints/yolo/handler.py"),
                 "env": {"VIDAGENT_YOLO_MODEL": "offline:yolo11n-random"}},
        "whisper": {"handler": str(ROOT / "endpoints/whisper/handler.py"),
                    "env": {"VIDAGENT_WHISPER_MODEL": "offline:tiny.en"}},
    }}))
    serve = Serve(tmp_path, "--config", config, timeout=300)
    try:
        with httpx.Client(base_url=serve.base_url, timeout=30) as http:
            b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
            detect = submit(http, "yolo", {"images": [b64(f.jpeg) for f in frames], "conf": 0.0, "max_det": 5})
            speech = submit(http, "whisper", {"audio_base64": b64(audio.wav_bytes()), "language": "en"})
            detected = wait_status(http, "yolo", detect, FINAL, timeout=120)
            heard = wait_status(http, "whisper", speech, FINAL, timeout=120)
    finally:
        code = serve.stop()
    assert code == 0, serve.stderr()
    assert detected["status"] == "COMPLETED", detected
    results = detected["output"]["results"]
    assert len(results) == 2
    for result, frame in zip(results, frames):
        assert (result["width"], result["height"]) == (frame.width, frame.height)
        assert len(result["detections"]) == 5  # conf 0 and random weights: max_det boxes
        assert {"label", "class_id", "confidence", "box"} <= set(result["detections"][0])
    assert heard["status"] == "COMPLETED", heard
    assert_words(" ".join(s["text"] for s in heard["output"]["segments"]), sample_truth["text"], max_wer=TINY_EN_MAX_WER)
