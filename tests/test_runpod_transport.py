"""The RunPod client's policy, against a scripted stand-in for RunPod's cloud.

RunPod's cloud cannot be reached from here, so each test scripts its answers with
httpx.MockTransport; the same client runs against `vidagent serve` over real HTTP in
tests/test_runpod_e2e.py and tests/test_runpod_client.py. Time is a fake clock that the
transport's sleeps advance, so deadlines and rate windows are exact and nothing waits.
"""

import asyncio
import json

import httpx
import pytest

from vidagent.config import Settings
from vidagent.errors import BackendError, ConfigError, JobFailed, JobsLeftRunning, JobTimeout
from vidagent.media.sampler import SampledFrame
from vidagent.tasks.detect import FrameBatcher, payload_bytes
from vidagent.transports import Router
from vidagent.transports.runpod import MAX_RUN_BYTES, RunPodTransport
from vidagent.transports.runpod_status import diagnose, worker_error, worker_failure
from vidagent.transports.runpod_jobs import RateLimit

KEY = "rp_TESTKEY_must_never_leak"
LABEL = "yolo (endpoint ep-yolo)"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class FakeRunPod:
    """Answers from a script: a list of (status code, json, headers) or an exception per
    route kind; once a script runs out, its last answer repeats."""

    def __init__(self, run=None, status=None, cancel=None, health=None, clock=None):
        self.script = {"run": list(run or []), "status": list(status or []), "cancel": list(cancel or []),
                       "health": list(health or [])}
        self.defaults = {"run": ok({"id": "j1", "status": "IN_QUEUE"}), "status": ok({"id": "j1", "status": "IN_PROGRESS"}),
                         "cancel": ok({"id": "j1", "status": "CANCELLED"}), "health": ok({"jobs": {}, "workers": {}})}
        self.calls: list[tuple[str, str]] = []
        self.bodies: list[dict] = []
        self.auth: set[str] = set()
        self.clock = clock
        self.cancel_starts: list[float] = []
        self.cancels_in_flight = self.most_cancels_in_flight = 0
        self.run_gate: asyncio.Event | None = None

    async def handler(self, request: httpx.Request) -> httpx.Response:
        kind = request.url.path.split("/")[3]  # /v2/{endpoint}/{kind}/...
        self.calls.append((kind, request.url.path))
        self.auth.add(request.headers.get("Authorization", ""))
        if kind == "run":
            self.bodies.append(json.loads(request.content))
            if self.run_gate is not None:
                await self.run_gate.wait()  # the answer is on its way
        if kind == "cancel":
            self.cancel_starts.append(self.clock() if self.clock else 0.0)
            self.cancels_in_flight += 1
            self.most_cancels_in_flight = max(self.most_cancels_in_flight, self.cancels_in_flight)
            await asyncio.sleep(0.001)  # let other cancels start, if the client allows them to
            self.cancels_in_flight -= 1
        script = self.script[kind]
        answer = script.pop(0) if len(script) > 1 else (script[0] if script else self.defaults[kind])
        if isinstance(answer, Exception):
            raise answer
        code, body, headers = answer
        if kind == "cancel" and code == 200 and body.get("id") == "j1":
            body = {**body, "id": request.url.path.rsplit("/", 1)[1]}
        return httpx.Response(code, json=body, headers=headers)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)


def ok(body, headers=None):
    return (200, body, headers or {})


def settings(**extra) -> Settings:
    return Settings(**{
        "runpod_api_key": KEY, "runpod_yolo_endpoint_id": "ep-yolo", "runpod_base_url": "https://rp.test/v2",
        "runpod_max_retries": 3, **extra,
    })


def transport(fake: FakeRunPod, clock: Clock | None = None, limits=None, **extra) -> RunPodTransport:
    clock = clock or fake.clock or Clock()
    fake.clock = clock
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
    return RunPodTransport(settings(**extra), http=http, sleep=clock.sleep, jitter=lambda: 1.0, clock=clock,
                           limits=limits)


def submit(t: RunPodTransport, payload=None):
    async def run():
        try:
            return await t.submit("yolo", payload or {"images": ["aGk="]})
        finally:
            t.unconfirmed = await t.aclose()

    return asyncio.run(run())


COMPLETED = {"id": "j1", "status": "COMPLETED", "output": {"results": []}, "executionTime": 1500, "delayTime": 250,
             "workerId": "w-7"}


def sdk_error(kind: str, message: str) -> str:
    """What RunPod's SDK posts when a handler raises (runpod/serverless/modules/rp_job.py)."""
    return json.dumps({"error_type": f"<class '{kind}'>", "error_message": message, "error_traceback": "Traceback…"})


def test_completed_job_returns_output_usage_and_worker():
    fake = FakeRunPod(run=[ok({"id": "j1", "status": "IN_QUEUE"})],
                      status=[ok({"id": "j1", "status": "IN_QUEUE"}), ok({"id": "j1", "status": "IN_PROGRESS"}), ok(COMPLETED)])
    t = transport(fake)
    result = submit(t)
    assert result.output == {"results": []}
    assert (result.execution_s, result.delay_s, result.worker_id, result.billed) == (1.5, 0.25, "w-7", True)
    assert fake.auth == {f"Bearer {KEY}"}
    assert fake.bodies[0]["policy"] == {"executionTimeout": 600000, "ttl": 3600000}
    assert fake.calls[0][1] == "/v2/ep-yolo/run" and fake.calls[1][1] == "/v2/ep-yolo/status/j1"
    assert len(t.live) == 0 and t.unconfirmed == {} and fake.count("cancel") == 0


@pytest.mark.parametrize("error, retryable, message", [
    (sdk_error("torch.OutOfMemoryError", "CUDA out of memory\ntried 2 GiB"), True,
     "torch.OutOfMemoryError: CUDA out of memory tried 2 GiB"),
    (sdk_error("vidagent.workers.WorkerInputError", "input field 'images': required"), False,
     "vidagent.workers.WorkerInputError: input field 'images': required"),
    ("input field 'conf': must be at most 1", False, "input field 'conf': must be at most 1"),
])
def test_a_failed_job_is_classified_from_the_workers_error_and_never_resent(error, retryable, message):
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "FAILED", "error": error})])
    with pytest.raises(JobFailed) as failed:
        submit(transport(fake))
    assert str(failed.value) == f"yolo job j1 failed: {message}"
    assert failed.value.retryable is retryable
    assert fake.count("run") == 1


def test_timed_out_and_cancelled_jobs():
    ran = {"id": "j1", "status": "TIMED_OUT", "workerId": "w1", "delayTime": 5, "executionTime": 600000}
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok(ran)])
    with pytest.raises(JobTimeout, match="ran past runpod_execution_timeout_s"):
        submit(transport(fake))
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "TIMED_OUT"})])
    with pytest.raises(JobTimeout, match="expired in the queue"):
        submit(transport(fake))
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "CANCELLED"})])
    with pytest.raises(BackendError, match="cancelled"):
        submit(transport(fake))


def test_a_job_gone_from_status_is_not_resubmitted():
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[(404, {"error": "request does not exist"}, {})])
    t = transport(fake)
    with pytest.raises(BackendError, match="j1 is gone \\(404\\).*not resubmitted"):
        submit(t)
    assert fake.count("run") == 1 and fake.count("cancel") == 0 and t.unconfirmed == {}


def test_run_is_resent_only_when_it_cannot_have_been_accepted():
    clock = Clock()
    fake = FakeRunPod(
        run=[(429, {}, {"Retry-After": "7"}), httpx.ConnectError("refused"), (429, {}, {}), ok({"id": "j1"})],
        status=[ok(COMPLETED)],
    )
    assert submit(transport(fake, clock)).output == {"results": []}
    assert fake.count("run") == 4
    # Retry-After, then 0.5 s x 2^retry (jitter pinned to 1), then the first status poll
    assert clock.sleeps == [7.0, 1.0, 2.0, 0.05]


@pytest.mark.parametrize("lost", [
    httpx.ReadTimeout("no answer"), httpx.RemoteProtocolError("connection dropped"), httpx.WriteTimeout("stuck"),
    (500, {"error": "internal"}, {}), (502, {}, {}), (503, {}, {}), (504, {}, {}),
])
def test_a_run_whose_answer_was_lost_is_never_resent(lost):
    fake = FakeRunPod(run=[lost, ok({"id": "j2"})])
    t = transport(fake)
    with pytest.raises(BackendError, match="answer to POST /run was lost .*not sent again") as err:
        submit(t)
    assert fake.count("run") == 1 and KEY not in str(err.value)
    assert len(t.live) == 0  # no id: nothing to track


def test_status_reads_are_retried_on_5xx_and_timeouts():
    clock = Clock()
    fake = FakeRunPod(run=[ok({"id": "j1"})],
                      status=[(503, {}, {}), httpx.ReadTimeout("slow"), (502, {}, {"Retry-After": "3"}), ok(COMPLETED)])
    assert submit(transport(fake, clock)).execution_s == 1.5
    assert fake.count("status") == 4 and clock.sleeps == [0.05, 0.5, 1.0, 3.0]


def test_a_status_that_keeps_failing_gives_up_and_cancels_the_job():
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[(500, {}, {})])
    t = transport(fake)
    with pytest.raises(BackendError, match="kept answering 500 to GET /ep-yolo/status/j1 \\(4 tries\\)"):
        submit(t)
    assert fake.count("status") == 4  # 1 + runpod_max_retries
    assert ("cancel", "/v2/ep-yolo/cancel/j1") in fake.calls and t.unconfirmed == {}


def test_network_errors_are_retried_then_reported_without_the_key():
    fake = FakeRunPod(run=[httpx.ConnectError("refused")])
    with pytest.raises(BackendError) as err:
        submit(transport(fake))
    assert fake.count("run") == 4  # 1 + runpod_max_retries
    assert "cannot reach https://rp.test/v2" in str(err.value) and KEY not in str(err.value)


def test_bad_key_is_a_configuration_error():
    fake = FakeRunPod(run=[(401, {"error": "Unauthorized"}, {})])
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY") as err:
        submit(transport(fake))
    assert KEY not in str(err.value) and fake.count("run") == 1


def test_missing_key_missing_endpoint_id_and_a_clear_text_url_say_what_to_set():
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY is not set"):
        RunPodTransport(Settings())
    fake = FakeRunPod()
    with pytest.raises(ConfigError, match="RUNPOD_WHISPER_ENDPOINT_ID"):
        asyncio.run(transport(fake).submit("whisper", {}))
    with pytest.raises(ConfigError, match="RUNPOD_BASE_URL: http://10.0.0.5:8080/v2 is plain http") as err:
        RunPodTransport(settings(runpod_base_url="http://10.0.0.5:8080/v2"))
    assert KEY not in str(err.value)
    RunPodTransport(settings(runpod_base_url="http://127.0.0.1:8080/v2"))  # loopback: a local serve


def test_oversized_payload_is_refused_before_sending():
    fake = FakeRunPod()
    with pytest.raises(BackendError, match="10 MB"):
        submit(transport(fake), {"images": ["A" * MAX_RUN_BYTES]})
    assert fake.calls == []


def cancelled_run(t: RunPodTransport, jobs: int, fake: FakeRunPod):
    """`jobs` submits in flight, then their caller is cancelled (Ctrl-C), then the transport
    closes: what the CLI sees."""

    async def scenario():
        tasks = [asyncio.create_task(t.submit("yolo", {})) for _ in range(jobs)]
        while len(t.live) < jobs:
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        return await t.aclose()

    return asyncio.run(scenario())


def numbered_runs(n: int):
    return [ok({"id": f"j{i}", "status": "IN_QUEUE"}) for i in range(n)] + [ok({"id": f"j{n}"})]


def test_cancelling_the_caller_cancels_the_job_and_retries_refused_cancels():
    fake = FakeRunPod(run=numbered_runs(1), cancel=[(429, {}, {"Retry-After": "2"}), (503, {}, {}), ok({"id": "j0", "status": "CANCELLED"})])
    t = transport(fake)
    assert cancelled_run(t, 1, fake) == {}
    assert [p for k, p in fake.calls if k == "cancel"] == ["/v2/ep-yolo/cancel/j0"] * 3
    assert len(t.live) == 0


def test_a_caller_cancelled_while_its_run_is_in_flight_still_gets_its_job_cancelled():
    fake = FakeRunPod(run=numbered_runs(1))
    t = transport(fake)

    async def scenario():
        fake.run_gate = asyncio.Event()
        task = asyncio.create_task(t.submit("yolo", {}))
        while fake.count("run") == 0:
            await asyncio.sleep(0)
        task.cancel()  # Ctrl-C while RunPod is accepting the job
        with pytest.raises(asyncio.CancelledError):
            await task
        fake.run_gate.set()
        return await t.aclose()

    assert asyncio.run(scenario()) == {}
    assert [p for k, p in fake.calls if k == "cancel"] == ["/v2/ep-yolo/cancel/j0"] and len(t.live) == 0


def test_cancels_respect_runpods_concurrency_and_rate_limits():
    # RunPod: 20 concurrent and 100 per 10 s; scaled down here so a few jobs exceed both.
    clock = Clock()
    fake = FakeRunPod(run=numbered_runs(40), clock=clock)
    t = transport(fake, clock, limits={"cancel": RateLimit(count=10, period_s=1.0, concurrent=3)})
    assert cancelled_run(t, 40, fake) == {}
    assert fake.count("cancel") == 40 and fake.most_cancels_in_flight == 3
    starts = fake.cancel_starts
    assert all(later - earlier >= 1.0 for earlier, later in zip(starts, starts[10:]))  # <= 10 in any 1 s
    assert starts[-1] - starts[0] >= 3.0  # 40 cancels at 10 a second


def test_cancels_use_runpods_published_limits_by_default():
    clock = Clock()
    fake = FakeRunPod(run=numbered_runs(120), clock=clock)
    t = transport(fake, clock, runpod_concurrency=256)
    assert cancelled_run(t, 120, fake) == {}
    assert fake.most_cancels_in_flight == 20
    starts = fake.cancel_starts
    assert all(later - earlier >= 10.0 for earlier, later in zip(starts, starts[100:]))


@pytest.mark.parametrize("answer", [(500, {}, {}), (403, {"error": "forbidden"}, {}), ok({"id": "j", "status": "IN_PROGRESS"})])
def test_jobs_not_confirmed_cancelled_are_reported_by_id(answer):
    fake = FakeRunPod(run=numbered_runs(2), cancel=[answer])
    t = transport(fake)
    assert cancelled_run(t, 2, fake) == {LABEL: ["j0", "j1"]}
    with pytest.raises(JobsLeftRunning) as left:
        asyncio.run(Router({"yolo": StubClosed({LABEL: ["j0", "j1"]}), "whisper": StubClosed({})}).aclose())
    lines = str(left.value).splitlines()
    assert lines[1:] == [f"{LABEL}: j0, j1"] and "may still be running" in lines[0]
    assert left.value.jobs == {LABEL: ["j0", "j1"]} and KEY not in str(left.value)


class StubClosed:
    name = "stub"

    def __init__(self, left):
        self.left = left

    async def aclose(self):
        return self.left


@pytest.mark.parametrize("workers, words", [
    ({}, "no workers"),
    ({"idle": 0, "initializing": 0, "ready": 0, "running": 0, "throttled": 3}, "all 3 worker(s) throttled"),
    ({"initializing": 2, "throttled": 1}, "2 worker(s) still initializing"),
    ({"unhealthy": 1}, "1 worker(s) unhealthy"),
])
def test_a_job_no_worker_takes_fails_at_the_queue_deadline_with_a_diagnosis(workers, words):
    clock = Clock()
    health = ok({"jobs": {"inQueue": 1, "inProgress": 0}, "workers": workers})
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "IN_QUEUE"})], health=[health])
    t = transport(fake, clock, runpod_queue_timeout_s=30)
    started = clock.now
    with pytest.raises(JobTimeout) as timeout:
        submit(t)
    message = str(timeout.value)
    assert message.startswith("yolo job j1 waited 3") and "runpod_queue_timeout_s 30" in message
    assert words in message and message.endswith("it was cancelled") and "\n" not in message
    assert 30 <= clock.now - started < 32 and fake.count("health") == 1
    assert ("cancel", "/v2/ep-yolo/cancel/j1") in fake.calls and t.unconfirmed == {}


def test_the_queue_deadline_waits_on_while_workers_are_busy_with_other_jobs():
    clock = Clock()
    busy = ok({"jobs": {"inQueue": 40, "inProgress": 3}, "workers": {"running": 3}})
    queued = ok({"id": "j1", "status": "IN_QUEUE"})
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[queued] * 60 + [ok(COMPLETED)], health=[busy])
    t = transport(fake, clock, runpod_queue_timeout_s=10)
    assert submit(t).output == {"results": []}
    assert fake.count("health") >= 2 and fake.count("cancel") == 0


def test_no_queue_deadline_when_it_is_unset():
    clock = Clock()
    fake = FakeRunPod(run=[ok({"id": "j1"})], status=[ok({"id": "j1", "status": "IN_QUEUE"})] * 100 + [ok(COMPLETED)])
    assert submit(transport(fake, clock, runpod_queue_timeout_s=None)).output == {"results": []}
    assert clock.now - 1000 > 60 and fake.count("health") == 0


def test_health_diagnosis_reads_runpods_worker_counts():
    assert diagnose({"workers": {"idle": 0, "running": 2}, "jobs": {"inQueue": 9}}) == ("2 worker(s) busy with other jobs, 9 queued", True)
    assert diagnose({"workers": {"idle": 1}})[0].startswith("1 idle worker(s) not taking jobs")
    assert diagnose({})[0].startswith("no workers")


def test_worker_error_shapes():
    assert worker_error("plain message") == "plain message"
    assert worker_error(json.dumps({"error_message": "boom"})) == "boom"
    assert worker_failure(None) == ("the worker reported no error message", True)
    assert worker_failure({"message": "bad"}) == ("{'message': 'bad'}", False)


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
