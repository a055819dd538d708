"""RunPod's job lifecycle as a pure state machine: no I/O, no asyncio, an injectable clock.

    IN_QUEUE ──take──> IN_PROGRESS ──job-done──> COMPLETED | FAILED
       │  ▲                 │ ──executionTimeout──> TIMED_OUT   (worker told to stop)
       │  └─worker died─────┤ ──cancel──> CANCELLED              (worker told to stop)
       └──cancel──> CANCELLED, ──purge / ttl──> gone

A job is *gone* (404) once its `ttl` has passed since submission, whatever its state, or
once a finished job's result retention has passed. The HTTP layer wakes its long-polls
after every call that changes something; this module only keeps the rules, so they are
unit-tested with a fake clock. Times are float seconds; `status_body` reports
milliseconds, as RunPod does.
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMED_OUT = "TIMED_OUT"
FINAL = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})

# RunPod's defaults (docs: "Send API requests", execution policies; result retention).
DEFAULT_EXECUTION_TIMEOUT_S = 600.0
DEFAULT_TTL_S = 86_400.0
RETRYABLE = frozenset({FAILED, TIMED_OUT})


@dataclass(frozen=True)
class Policy:
    execution_timeout_s: float = DEFAULT_EXECUTION_TIMEOUT_S
    ttl_s: float = DEFAULT_TTL_S


@dataclass(eq=False)
class Job:
    id: str
    endpoint: str
    input: Any
    policy: Policy
    submitted_at: float
    sync: bool = False
    webhook: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # top-level keys the worker also gets (s3Config)
    status: str = IN_QUEUE
    worker_id: str | None = None
    taken_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] = field(default_factory=dict)  # "output" and/or "error", as the worker posted
    stream: list[Any] = field(default_factory=list)
    stream_read: int = 0
    retries: int = 0
    expires_at: float = float("inf")

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def ttl_deadline(self) -> float:
        return self.submitted_at + self.policy.ttl_s

    def status_body(self) -> dict[str, Any]:
        """The /status JSON: delayTime = queued → taken, executionTime = taken → done (ms)."""
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.taken_at is not None:
            body["delayTime"] = _ms(self.taken_at - self.submitted_at)
            if self.finished_at is not None:
                body["executionTime"] = _ms(self.finished_at - self.taken_at)
        if self.worker_id is not None:
            body["workerId"] = self.worker_id
        body.update(self.result)
        return body

    def work_item(self) -> dict[str, Any]:
        """What a worker's job-take receives."""
        return {**self.extra, "id": self.id, "input": self.input}


@dataclass
class EndpointCounters:
    accepted_run: int = 0
    accepted_runsync: int = 0
    accepted_openai: int = 0  # jobs made from OpenAI-compatible requests (/openai/v1/...)
    final: dict[str, int] = field(default_factory=lambda: {s: 0 for s in sorted(FINAL)})
    retried: int = 0
    expired: int = 0
    purged: int = 0


class JobStore:
    """All jobs of all endpoints of one server.

    `on_final(job)` is called once per job that reaches a final state (webhooks, logs);
    `on_change()` after every change, at once: the HTTP layer wakes its long polls on it.
    """

    def __init__(
        self,
        endpoints: Iterable[str],
        *,
        retention_s: float = 1800.0,
        sync_retention_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_final: Callable[[Job], None] | None = None,
        on_change: Callable[[], None] | None = None,
    ):
        self.retention_s = retention_s
        self.sync_retention_s = sync_retention_s
        self._clock = clock
        self._on_final = on_final
        self._on_change = on_change
        self._jobs: dict[str, Job] = {}
        self._active: dict[str, Job] = {}  # IN_QUEUE and IN_PROGRESS: the ones with deadlines
        self._queues: dict[str, deque[str]] = {name: deque() for name in endpoints}
        self._running: dict[str, set[str]] = {}  # worker id → ids of its jobs in progress
        self._stops: dict[str, list[str]] = {}  # worker id → job ids it must stop
        self._retention: list[tuple[float, str]] = []  # heap of finished jobs' expiry times
        self.counters = {name: EndpointCounters() for name in self._queues}

    # -- client side ------------------------------------------------------------------

    def has_endpoint(self, endpoint: str) -> bool:
        return endpoint in self._queues

    def add_endpoint(self, endpoint: str) -> None:
        """An endpoint created while serving (through the REST API): a queue of its own."""
        if endpoint not in self._queues:
            self._queues[endpoint] = deque()
            self.counters[endpoint] = EndpointCounters()

    def submit(
        self,
        endpoint: str,
        job_input: Any,
        policy: Policy | None = None,
        *,
        sync: bool = False,
        webhook: str | None = None,
        extra: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> Job:
        """Queue a job. `source` names the counter it is accepted under: "run", "runsync"
        or "openai"; by default the one `sync` implies."""
        self.tick()
        prefix = "sync-" if sync else ""  # RunPod marks /runsync ids the same way
        job = Job(
            id=f"{prefix}{uuid.uuid4()}",
            endpoint=endpoint,
            input=job_input,
            policy=policy or Policy(),
            submitted_at=self._clock(),
            sync=sync,
            webhook=webhook,
            extra=dict(extra or {}),
        )
        job.expires_at = job.ttl_deadline
        self._jobs[job.id] = job
        self._active[job.id] = job
        self._queues[endpoint].append(job.id)
        self._notify()
        counter = f"accepted_{source or ('runsync' if sync else 'run')}"
        counters = self.counters[endpoint]
        setattr(counters, counter, getattr(counters, counter) + 1)
        return job

    def get(self, job_id: str) -> Job | None:
        self.tick()
        return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; a finished one is returned unchanged."""
        job = self.get(job_id)
        if job is None or job.final:
            return job
        if job.status == IN_QUEUE:
            self._queues[job.endpoint].remove(job.id)
        else:
            self._stop_on_worker(job)
        self._finalize(job, CANCELLED)
        return job

    def retry(self, job_id: str) -> Job | None:
        """Requeue a FAILED or TIMED_OUT job under its id (RunPod's /retry); else unchanged."""
        job = self.get(job_id)
        if job is None or job.status not in RETRYABLE:
            return job
        job.status = IN_QUEUE
        job.result = {}
        job.stream.clear()
        job.stream_read = 0
        job.worker_id = job.taken_at = job.finished_at = None
        job.expires_at = job.ttl_deadline
        job.retries += 1
        self._active[job.id] = job
        self._queues[job.endpoint].append(job.id)
        self.counters[job.endpoint].retried += 1
        self._notify()
        return job

    def purge(self, endpoint: str) -> int:
        """Drop every queued job of an endpoint (they are gone, as RunPod's purge-queue does)."""
        self.tick()
        queue = self._queues[endpoint]
        removed = len(queue)
        while queue:
            job_id = queue.popleft()
            self._active.pop(job_id, None)
            self._jobs.pop(job_id, None)
        self.counters[endpoint].purged += removed
        self._notify(bool(removed))
        return removed

    def read_stream(self, job_id: str) -> list[Any]:
        """Partial outputs not read before: /stream hands each one out once."""
        job = self.get(job_id)
        if job is None:
            return []
        fresh = job.stream[job.stream_read :]
        job.stream_read = len(job.stream)
        return fresh

    def keep_for(self, job_id: str, seconds: float) -> None:
        """`/status/ID?ttl=ms`: a finished job's result is kept this much longer, no more."""
        job = self.get(job_id)
        if job is not None and job.final:
            job.expires_at = self._clock() + seconds
            heapq.heappush(self._retention, (job.expires_at, job.id))

    # -- worker side ------------------------------------------------------------------

    def queued(self, endpoint: str) -> int:
        self.tick()
        return len(self._queues[endpoint])

    def take(self, endpoint: str, worker_id: str, count: int = 1) -> list[Job]:
        self.tick()
        queue = self._queues[endpoint]
        now = self._clock()
        taken = []
        while queue and len(taken) < count:
            job = self._jobs[queue.popleft()]
            job.status = IN_PROGRESS
            job.worker_id = worker_id
            job.taken_at = now
            self._running.setdefault(worker_id, set()).add(job.id)
            taken.append(job)
        self._notify(bool(taken))
        return taken

    def finish(self, worker_id: str, job_id: str, result: dict[str, Any]) -> Job | None:
        """A worker's job-done. None when ignored: the job was cancelled, timed out, expired,
        or handed to another worker after this one was presumed dead."""
        job = self.get(job_id)
        if job is None or job.status != IN_PROGRESS or job.worker_id != worker_id:
            return None
        self._running[worker_id].discard(job.id)
        kept = {k: result[k] for k in ("output", "error") if k in result}
        failed = kept.get("error") not in (None, "")
        if not failed:
            kept.pop("error", None)
        self._finalize(job, FAILED if failed else COMPLETED, kept)
        return job

    def add_stream(self, worker_id: str, job_id: str, output: Any) -> bool:
        job = self.get(job_id)
        if job is None or job.status != IN_PROGRESS or job.worker_id != worker_id:
            return False
        job.stream.append(output)
        self._notify()
        return True

    def has_stops(self, worker_id: str) -> bool:
        return bool(self._stops.get(worker_id))

    def pop_stops(self, worker_id: str) -> list[str]:
        return self._stops.pop(worker_id, [])

    def worker_jobs(self, worker_id: str) -> list[str]:
        return sorted(self._running.get(worker_id, ()))

    def worker_lost(self, worker_id: str) -> list[Job]:
        """A worker process died: its jobs go back to the front of the queue, as retries."""
        self._stops.pop(worker_id, None)
        requeued = []
        for job_id in sorted(self._running.pop(worker_id, ())):
            job = self._jobs[job_id]
            job.status = IN_QUEUE
            job.worker_id = job.taken_at = None
            job.retries += 1
            self._queues[job.endpoint].appendleft(job.id)
            self.counters[job.endpoint].retried += 1
            requeued.append(job)
        self._notify(bool(requeued))
        return requeued

    # -- time -------------------------------------------------------------------------

    def tick(self) -> bool:
        """Apply every deadline that has passed; True if anything changed."""
        now = self._clock()
        changed = False
        for job in list(self._active.values()):
            if now >= job.ttl_deadline:
                self._expire(job)
                changed = True
            elif job.status == IN_PROGRESS and now - job.taken_at >= job.policy.execution_timeout_s:
                self._stop_on_worker(job)
                self._finalize(job, TIMED_OUT)
                changed = True
        while self._retention and self._retention[0][0] <= now:
            _, job_id = heapq.heappop(self._retention)
            job = self._jobs.get(job_id)
            if job is not None and job.final and job.expires_at <= now:
                del self._jobs[job_id]
                self._notify()
                changed = True
        return changed

    # -- reports ----------------------------------------------------------------------

    def counts(self, endpoint: str) -> dict[str, int]:
        queued = len(self._queues[endpoint])
        running = sum(1 for j in self._active.values() if j.endpoint == endpoint and j.status == IN_PROGRESS)
        return {"in_queue": queued, "in_progress": running}

    # -- internals --------------------------------------------------------------------

    def _notify(self, changed: bool = True) -> None:
        if changed and self._on_change is not None:
            self._on_change()

    def _stop_on_worker(self, job: Job) -> None:
        self._running.get(job.worker_id, set()).discard(job.id)
        self._stops.setdefault(job.worker_id, []).append(job.id)

    def _expire(self, job: Job) -> None:
        if job.status == IN_QUEUE:
            self._queues[job.endpoint].remove(job.id)
        else:
            self._stop_on_worker(job)
        del self._active[job.id]
        del self._jobs[job.id]
        self.counters[job.endpoint].expired += 1
        self._notify()

    def _finalize(self, job: Job, status: str, result: dict[str, Any] | None = None) -> None:
        now = self._clock()
        job.status = status
        job.finished_at = now
        job.result = result or {}
        if status not in RETRYABLE:
            job.input = None  # inputs can be 10 MB of base64; only /retry needs them again
        retention = min(self.sync_retention_s, self.retention_s) if job.sync else self.retention_s
        job.expires_at = min(now + retention, job.ttl_deadline)
        heapq.heappush(self._retention, (job.expires_at, job.id))
        self._active.pop(job.id, None)
        self.counters[job.endpoint].final[status] += 1
        self._notify()
        if self._on_final is not None:
            self._on_final(job)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
