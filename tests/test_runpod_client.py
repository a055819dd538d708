"""The RunPod client's billing safety against a real `vidagent serve`: real HTTP, real SDK
workers, serve's own books (`/_vidagent/stats`) as the witness of what was accepted, run
and cancelled.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from conftest import OFFLINE_CONFIG
from test_serve import HANDLERS, Serve
from vidagent.config import Settings
from vidagent.errors import BackendError, JobTimeout
from vidagent.transports.runpod import RunPodTransport

KEY = "rp_client_SECRET_5e21"


def stats(server: Serve, endpoint: str) -> dict:
    return httpx.get(f"{server.root}/_vidagent/stats", headers={"Authorization": KEY}, timeout=10).json()["endpoints"][endpoint]


def transport(server: Serve, **settings) -> RunPodTransport:
    return RunPodTransport(Settings(runpod_api_key=KEY, runpod_base_url=server.base_url, **settings))


def until(condition, what: str, timeout: float = 30):
    import time

    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return result


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    """Every /run is accepted and run, and its answer lost (a 502)."""
    server = Serve(tmp_path_factory.mktemp("lossy"), "--endpoint", f"echo={HANDLERS / 'echo.py'}",
                   "--api-key", KEY, "--fault-lost", "1")
    yield server
    assert server.stop() == 0, server.stderr()


def test_a_run_whose_answer_is_lost_is_billed_once(lossy):
    t = transport(lossy, runpod_yolo_endpoint_id="echo")

    async def run():
        try:
            await t.submit("yolo", {"n": 1})
        finally:
            assert await t.aclose() == {}

    with pytest.raises(BackendError, match="answer to POST /run was lost \\(HTTP 502\\).*not sent again"):
        asyncio.run(run())
    # serve accepted exactly one job, and ran it: the client did not send a second
    assert stats(lossy, "echo")["accepted"]["run"] == 1
    until(lambda: stats(lossy, "echo")["final"]["COMPLETED"] == 1, "the accepted job to run")


def test_a_job_no_worker_takes_fails_at_the_queue_deadline_and_is_cancelled(tmp_path):
    server = Serve(tmp_path, "--endpoint", f"nobody={HANDLERS / 'echo.py'}:0", "--api-key", KEY)
    try:
        t = transport(server, runpod_yolo_endpoint_id="nobody", runpod_queue_timeout_s=0.5)

        async def run():
            try:
                await t.submit("yolo", {"n": 1})
            finally:
                assert await t.aclose() == {}

        with pytest.raises(JobTimeout) as timeout:
            asyncio.run(run())
        message = str(timeout.value)
        assert "no worker taking it (runpod_queue_timeout_s 0.5): no workers: none running or starting" in message
        assert message.endswith("it was cancelled")
        books = stats(server, "nobody")
        assert books["accepted"]["run"] == 1 and books["final"]["CANCELLED"] == 1 and books["in_queue"] == 0
    finally:
        assert server.stop() == 0


def test_jobs_given_up_on_are_all_cancelled_on_the_endpoint(tmp_path):
    server = Serve(tmp_path, "--endpoint", f"echo={HANDLERS / 'echo.py'}", "--api-key", KEY)
    try:
        t = transport(server, runpod_yolo_endpoint_id="echo")

        async def run():
            tasks = [asyncio.create_task(t.submit("yolo", {"sleep": 30, "n": i})) for i in range(30)]
            while len(t.live) < 30:
                await asyncio.sleep(0.01)
            for task in tasks:  # what Ctrl-C does to the pipeline's jobs
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return await t.aclose()

        assert asyncio.run(run()) == {}
        books = stats(server, "echo")
        assert books["accepted"]["run"] == 30 and books["final"]["CANCELLED"] == 30
        assert books["in_queue"] == 0 and books["in_progress"] == 0
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_jobs_that_cannot_be_cancelled_are_named_when_analyze_exits(run_cli, sample, tmp_path):
    # Every read and cancel fails (a 5xx is never injected on /run): jobs start, nothing can
    # be learnt about them or stop them, and the user is told which may still be billing.
    server = Serve(tmp_path, "--endpoint", f"yolo-ep={HANDLERS / 'echo.py'}", "--endpoint",
                   f"whisper-ep={HANDLERS / 'echo.py'}", "--api-key", KEY, "--fault-5xx", "1")
    try:
        result = run_cli("analyze", sample, "--out", tmp_path / "out", "--config", OFFLINE_CONFIG, "--no-cache",
                         "--detect-fps", "1", "--progress", "none",
                         env={"RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": server.base_url, "RUNPOD_MAX_RETRIES": "0",
                              "RUNPOD_YOLO_ENDPOINT_ID": "yolo-ep", "RUNPOD_WHISPER_ENDPOINT_ID": "whisper-ep"})
        started = {ep: stats(server, ep)["accepted"]["run"] for ep in ("yolo-ep", "whisper-ep")}
    finally:
        assert server.stop() == 0
    assert result.code == 1, result
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and KEY not in result.stderr
    header = next(i for i, line in enumerate(lines) if "could not be confirmed cancelled" in line)
    named = {line.split(" (endpoint ")[0]: line.split(": ", 1)[1].split(", ") for line in lines[header + 1:]}
    # every job serve accepted is named, one line per endpoint that has any
    expected = {name: started[f"{name}-ep"] for name in ("whisper", "yolo") if started[f"{name}-ep"]}
    assert expected and {name: len(ids) for name, ids in named.items()} == expected


@pytest.mark.slow
def test_a_runpod_run_records_its_backends_and_is_priced(run_cli, sample, tmp_path, runpod_server):
    from test_runpod_e2e import KEY as E2E_KEY

    result = run_cli("analyze", sample, "--out", tmp_path, "--config", OFFLINE_CONFIG, "--detect-fps", "2",
                     "--no-cache", "--backend", "runpod", env=runpod_server.env())
    assert result.code == 0, result
    report = json.loads((tmp_path / "sample" / "report.json").read_text())
    assert report["backends"] == {"whisper": "runpod", "yolo": "runpod"}
    for used in report["usage"].values():
        assert used["execution_s"] > 0 and used["usd"] > 0
    assert E2E_KEY not in result.stderr
