"""`vidagent serve` held to a client nobody here wrote: RunPod's own Python SDK.

`runpod.Endpoint` (runpod-python's endpoint runner) drives a real `vidagent serve` process
over real HTTP: run, status, output, stream, cancel, health, purge_queue and run_sync, the
calls RunPod's operation reference shows for the Python SDK. The SDK reads its base URL
from `runpod.endpoint_url_base` and its key from `runpod.api_key`, each time an Endpoint is
made. (The openai SDK drives the vLLM route in tests/test_serve_openai.py.)
"""

from __future__ import annotations

import time

import pytest
import requests
import runpod

from test_serve import HANDLERS, Serve

KEY = "sdk-test-key-0c4e"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    serve = Serve(tmp_path_factory.mktemp("sdk"), "--endpoint", f"echo={HANDLERS / 'echo.py'}:2",
                  "--endpoint", f"stream={HANDLERS / 'stream.py'}", "--api-key", KEY)
    yield serve
    assert serve.stop() == 0, serve.stderr()


@pytest.fixture
def sdk(server, monkeypatch):
    monkeypatch.setattr(runpod, "api_key", KEY)
    monkeypatch.setattr(runpod, "endpoint_url_base", server.base_url)
    return runpod


def until(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return result


def until_final(job):
    """Poll as the SDK's docs do, without their 10 s sleeps: status() until it is final."""
    return until(lambda: (state := job.status()) in FINAL and state, f"job {job.job_id} to finish")


def running(sdk):
    """A long job on the stream endpoint's one worker, seen running: it has streamed a
    chunk, so the SDK holds it as a task and a stop signal reaches it (one that arrives
    before that, within milliseconds of the job-take, the SDK drops)."""
    endpoint = sdk.Endpoint("stream")
    job = endpoint.run({"input": {"chunks": 600, "gap": 0.05}})
    until(lambda: endpoint.rp_client.get(f"stream/stream/{job.job_id}")["stream"], "the long job to stream")
    return endpoint, job


def test_run_status_and_output(sdk):
    endpoint = sdk.Endpoint("echo")
    job = endpoint.run({"input": {"n": 1, "sleep": 0.2}})
    assert job.status() in {"IN_QUEUE", "IN_PROGRESS"}
    output = job.output(timeout=20)  # polls /status once a second until final
    assert output["echo"] == {"n": 1, "sleep": 0.2}
    assert job.status() == "COMPLETED"
    bare = endpoint.run({"n": 2})  # the SDK wraps a bare dict into {"input": ...}
    assert bare.output(timeout=20)["echo"] == {"n": 2}


def test_run_sync_returns_the_output(sdk):
    endpoint = sdk.Endpoint("echo")
    assert endpoint.run_sync({"input": {"n": 3}}, timeout=30)["echo"] == {"n": 3}


def test_a_handler_failure_reaches_the_sdk_as_failed(sdk):
    job = sdk.Endpoint("echo").run({"input": {"error": "bad input"}})
    assert until_final(job) == "FAILED"
    assert job.output() is None  # the SDK keeps "output" only; the error stays in /status


def test_cancel_and_health(sdk):
    endpoint, busy = running(sdk)
    queued = endpoint.run({"input": {"chunks": 1}})
    health = endpoint.health()
    assert health["jobs"]["inProgress"] == 1 and health["jobs"]["inQueue"] == 1
    assert health["workers"]["running"] == 1 and health["workers"]["idle"] == 0
    assert set(health["jobs"]) == {"completed", "failed", "inProgress", "inQueue", "retried"}
    assert {"idle", "initializing", "ready", "running", "throttled"} <= set(health["workers"])

    for job in (queued, busy):
        assert job.cancel() == {"id": job.job_id, "status": "CANCELLED"}
        assert job.status() == "CANCELLED"
    assert endpoint.health()["jobs"] == {**health["jobs"], "inProgress": 0, "inQueue": 0}
    # The worker stopped the 30 s job: the next one runs now (the SDK's request would time
    # out at 20 s, long before the cancelled job would have ended).
    assert endpoint.run_sync({"input": {"chunks": 2}}, timeout=20) == [{"index": 0}, {"index": 1}]


def test_purge_queue(sdk):
    endpoint, busy = running(sdk)
    queued = [endpoint.run({"input": {"chunks": 1, "n": i}}) for i in range(3)]
    assert endpoint.purge_queue() == {"removed": 3, "status": "completed"}
    for job in queued:
        with pytest.raises(requests.HTTPError, match="404"):
            job.status()  # purged jobs are gone
    busy.cancel()


def test_stream_yields_each_partial_output(sdk):
    job = sdk.Endpoint("stream").run({"input": {"chunks": 3, "gap": 0.05}})
    assert list(job.stream()) == [{"index": 0}, {"index": 1}, {"index": 2}]


def test_a_wrong_key_is_the_sdks_unauthorized_error(sdk):
    sdk.api_key = "wrong"
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        sdk.Endpoint("echo").run({"input": {"n": 1}})


def test_an_unknown_job_or_endpoint_is_an_http_404(sdk):
    with pytest.raises(requests.HTTPError, match="404"):
        sdk.Endpoint("nope").health()
    with pytest.raises(requests.HTTPError, match="404"):
        sdk.Endpoint("echo").rp_client.get("echo/status/no-such-job")
