"""The RunPod client's policy, against a scripted stand-in for RunPod's cloud.

RunPod's cloud cannot be reached from here, so each test scripts its answers with
httpx.MockTransport; the same client runs against `vidagent serve` over real HTTP in
tests/test_runpod_e2e.py.
"""

import asyncio
import json

import httpx
import pytest

from vidagent.config import Settings
from vidagent.errors import BackendError, ConfigError, JobFailed, JobTimeout
from vidagent.media.sampler import SampledFrame
from vidagent.tasks.detect import FrameBatcher, payload_bytes
from vidagent.transports.runpod import MAX_RUN_BYTES, RunPodTransport, worker_error

KEY = "rp_TESTKEY_must_never_leak"


class FakeRunPod:
    """Answers from a script: a list of (status code, json, headers) per route kind."""

    def __init__(self, run=None, status=None, cancel=None):
        self.script = {"run": list(run or []), "status": list(status or []), "cancel": list(cancel or [])}
        self.calls: list[tuple[str, str]] = []
        self.bodies: list[dict] = []
        self.auth: set[str] = set()

    def handler(self, request: httpx.Request) -> httpx.Response:
        kind = request.url.path.split("/")[3]  # /v2/{endpoint}/{kind}/...
        self.calls.append((kind, request.url.path))
        self.auth.add(request.headers.get("Authorization", ""))
        if kind == "run":
            self.bodies.append(json.loads(request.content))
        answer = self.script[kind].pop(0) if self.script[kind] else (200, {"id": "j1", "status": "CANCELLED"}, {})
        if isinstance(answer, Exception):
            raise answer
        code, body, headers = answer
        return httpx.Response(code, json=body, headers=headers)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)


def ok(body, headers=None):
    return (200, body, headers or {})


def settings(**extra) -> Settings:
    return Settings(
        runpod_api_key=KEY, runpod_yolo_endpoint_id="ep-yolo", runpod_base_url="https://rp.test/v2",
        runpod_max_retries=3, **extra,
    )


def transport(fake: FakeRunPod, sleeps: list | None = None, **extra) -> RunPodTransport:
    async def record_sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
    return RunPodTransport(settings(**extra), http=http, sleep=record_sleep, jitter=lambda: 1.0)


def submit(t: RunPodTransport, payload=None):
    return asyncio.run(t.submit("yolo", payload or {"images": ["aGk="]}))


COMPLETED = {"id": "j1", "status": "COMPLETED", "output": {"results": []}, "executionTime": 1500, "delayTime": 250}


def test_completed_job_returns_output_and_usage():
    fake = FakeRunPod(run=[ok({"id": "j1", "status": "IN_QUEUE"})],
                      status=[ok({"id": "j1", "status": "IN_QUEUE"}), ok({"id": "j1", "status": "IN_PROGRESS"}), ok(COMPLETED)])
    result = submit(transport(fake))
    assert result.output == {"results": []}
    assert (result.execution_s, result.delay_s) == (1.5, 0.25)
    assert fake.auth == {f"Bearer {KEY}"}
    assert fake.bodies[0]["policy"] == {"executionTimeout": 600000, "ttl": 3600000}
    assert fake.calls[0][1] == "/v2/ep-yolo/run" and fake.calls[1][1] == "/v2/ep-yolo/status/j1"


def test_failed_job_is_not_retried_and_reads_the_sdk_error():
    sdk_error = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "bad image", "error_traceback": "Traceback…"})
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "FAILED", "error": sdk_error})])
    with pytest.raises(JobFailed, match="yolo job j1 failed: ValueError: bad image$"):
        submit(transport(fake))
    assert fake.count("run") == 1


def test_timed_out_and_cancelled_jobs():
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "TIMED_OUT"})])
    with pytest.raises(JobTimeout):
        submit(transport(fake))
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "CANCELLED"})])
    with pytest.raises(BackendError, match="cancelled"):
        submit(transport(fake))


def test_status_404_resubmits_the_job():
    fake = FakeRunPod(run=[ok({"id": "j1"}), ok({"id": "j2"})],
                      status=[(404, {"error": "request does not exist"}, {}), ok(COMPLETED)])
    t = transport(fake)
    assert submit(t).output == {"results": []}
    assert fake.count("run") == 2 and t.resubmitted == 1


def test_429_honours_retry_after_and_5xx_backs_off():
    sleeps: list[float] = []
    fake = FakeRunPod(
        run=[(429, {}, {"Retry-After": "7"}), (503, {}, {}), (502, {}, {}), ok({"id": "j1"})],
        status=[ok(COMPLETED)],
    )
    assert submit(transport(fake, sleeps)).output == {"results": []}
    # Retry-After, then 0.5 s * 2^attempt (jitter pinned to 1), then the first status poll
    assert sleeps == [7.0, 1.0, 2.0, 0.05]


def test_network_errors_are_retried_then_reported_without_the_key():
    fake = FakeRunPod(run=[httpx.ConnectError("refused")] * 4)
    with pytest.raises(BackendError) as err:
        submit(transport(fake))
    assert fake.count("run") == 4  # 1 + runpod_max_retries
    assert "cannot reach https://rp.test/v2" in str(err.value) and KEY not in str(err.value)


def test_persistent_5xx_gives_up():
    fake = FakeRunPod(run=[(500, {}, {})] * 4)
    with pytest.raises(BackendError, match="kept answering 500"):
        submit(transport(fake))


def test_bad_key_is_a_configuration_error():
    fake = FakeRunPod(run=[(401, {"error": "Unauthorized"}, {})])
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY") as err:
        submit(transport(fake))
    assert KEY not in str(err.value) and fake.count("run") == 1


def test_missing_key_and_missing_endpoint_id_say_what_to_set():
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY is not set"):
        RunPodTransport(Settings())
    fake = FakeRunPod()
    with pytest.raises(ConfigError, match="RUNPOD_WHISPER_ENDPOINT_ID"):
        asyncio.run(transport(fake).submit("whisper", {}))


def test_oversized_payload_is_refused_before_sending():
    fake = FakeRunPod()
    with pytest.raises(BackendError, match="10 MB"):
        submit(transport(fake), {"images": ["A" * MAX_RUN_BYTES]})
    assert fake.calls == []


def test_cancelling_the_caller_cancels_the_job():
    fake = FakeRunPod(run=[ok({"id": "j9"})], status=[ok({"id": "j9", "status": "IN_PROGRESS"})] * 1000)

    async def scenario():
        async def slow_sleep(seconds):
            await asyncio.sleep(0.01)

        http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
        t = RunPodTransport(settings(), http=http, sleep=slow_sleep)
        task = asyncio.create_task(t.submit("yolo", {}))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert ("cancel", "/v2/ep-yolo/cancel/j9") in fake.calls


def test_worker_error_shapes():
    assert worker_error("plain message") == "plain message"
    assert worker_error(None) == "unknown error"
    assert worker_error(json.dumps({"error_message": "boom"})) == "boom"


def frame(n_bytes: int, index: int = 0) -> SampledFrame:
    return SampledFrame("detect", index, index / 10, b"x" * n_bytes, 64, 48)


def test_batches_split_by_count_and_by_bytes():
    batcher = FrameBatcher(max_frames=4, max_bytes=None)
    out = [b for i in range(10) for b in batcher.add(frame(100, i))] + [batcher.flush()]
    assert [len(b) for b in out] == [4, 4, 2]

    limit = 1024 + 3 * payload_bytes(frame(3000))  # room for exactly three frames
    batcher = FrameBatcher(max_frames=16, max_bytes=limit)
    out = [b for i in range(10) for b in batcher.add(frame(3000, i))] + [batcher.flush()]
    assert [len(b) for b in out] == [3, 3, 3, 1]
    assert [f.index for b in out for f in b] == list(range(10))
    with pytest.raises(ValueError, match="exceeds"):
        FrameBatcher(16, max_bytes=2000).add(frame(3000))
