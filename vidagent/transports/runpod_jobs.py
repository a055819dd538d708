"""The RunPod client's bookkeeping: RunPod's per-endpoint request limits, the jobs it has
started and not yet seen finish, and cancelling them within those limits.

RunPod's published limits, per user and endpoint (docs.runpod.io, Serverless > Send API
requests > Rate limits, checked against runpod/docs@a900806 serverless/endpoints/
send-requests.mdx): /run 1000 requests per 10 s and 200 concurrent; /status and /stream
2000 per 10 s and 400 concurrent; /cancel 100 per 10 s and 20 concurrent. A request over
them is answered 429, which means it was refused, not run.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RateLimit:
    count: int  # calls that may start in any window of period_s
    period_s: float
    concurrent: int


RUNPOD_LIMITS = {
    "run": RateLimit(1000, 10.0, 200),
    "status": RateLimit(2000, 10.0, 400),
    "cancel": RateLimit(100, 10.0, 20),
}


class Limiter:
    """At most `limit.concurrent` calls at once and `limit.count` starts in any window of
    `limit.period_s` (a sliding window: RunPod's limits are stated per window, which a
    leaky bucket of the same rate would exceed by its burst). Use as `async with`."""

    def __init__(self, limit: RateLimit, clock: Clock, sleep: Sleep):
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._slots = asyncio.Semaphore(limit.concurrent)
        self._turn = asyncio.Lock()  # one caller at a time looks at the window

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        try:
            async with self._turn:
                while True:
                    now = self._clock()
                    while self._starts and self._starts[0] <= now - self.limit.period_s:
                        self._starts.popleft()
                    if len(self._starts) < self.limit.count:
                        self._starts.append(now)
                        return
                    await self._sleep(self._starts[0] + self.limit.period_s - now)
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *exc) -> None:
        self._slots.release()


class LiveJobs:
    """Every job this client started on RunPod and has not yet seen finish or cancelled,
    by endpoint label ("yolo (endpoint ep-123)") and id."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], str] = {}  # (endpoint id, job id) -> label

    def add(self, label: str, endpoint_id: str, job_id: str) -> None:
        self._jobs[(endpoint_id, job_id)] = label

    def discard(self, endpoint_id: str, job_id: str) -> None:
        self._jobs.pop((endpoint_id, job_id), None)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def items(self) -> list[tuple[str, str, str]]:
        return [(label, endpoint_id, job_id) for (endpoint_id, job_id), label in self._jobs.items()]

    def by_label(self, keys=None) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for (endpoint_id, job_id), label in self._jobs.items():
            if keys is None or (endpoint_id, job_id) in keys:
                grouped.setdefault(label, []).append(job_id)
        return {label: sorted(ids) for label, ids in grouped.items()}


class Canceller:
    """Cancels jobs in the background as they are given up on (a caller cancelled, a
    failure, a queue deadline), so that a hundred jobs abandoned at once neither block their
    callers nor exceed RunPod's cancel limits. `cancel_one(endpoint_id, job_id)` sends one
    cancel with its retries and returns True once the answer confirms the job stopped."""

    def __init__(self, jobs: LiveJobs, cancel_one: Callable[[str, str], Awaitable[bool]]):
        self._jobs = jobs
        self._cancel_one = cancel_one
        self._tasks: dict[tuple[str, str], asyncio.Task] = {}
        self.confirmed = 0

    def request(self, endpoint_id: str, job_id: str) -> asyncio.Task:
        """The task cancelling this job: the one under way, or a new try after one that
        could not confirm it."""
        key = (endpoint_id, job_id)
        task = self._tasks.get(key)
        if task is None or (task.done() and key in self._jobs):
            task = self._tasks[key] = asyncio.ensure_future(self._run(endpoint_id, job_id))
        return task

    async def _run(self, endpoint_id: str, job_id: str) -> bool:
        if await self._cancel_one(endpoint_id, job_id):
            self._jobs.discard(endpoint_id, job_id)
            self.confirmed += 1
            return True
        return False

    async def drain(self, timeout_s: float) -> dict[str, list[str]]:
        """Cancel every job still live, wait up to `timeout_s` for the answers, and return
        the ids that could not be confirmed cancelled, per endpoint label."""
        for _, endpoint_id, job_id in self._jobs.items():
            self.request(endpoint_id, job_id)
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for task in self._tasks.values():
            if not task.cancelled() and task.exception() is not None:
                task.exception()  # retrieved: a failed cancel is reported by id below
        return self._jobs.by_label()
