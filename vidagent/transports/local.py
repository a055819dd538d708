"""Run workers in this process, through the same JSON a remote endpoint would receive.

The payload is serialised and parsed again on the way in and out, so a local run takes
exactly the path a RunPod run takes, base64 and all. Each endpoint gets one thread:
model calls block, and a model instance is not shared between threads.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import wire
from ..errors import JobFailed
from ..workers import WorkerInputError, get_handler
from . import JobResult


class LocalTransport:
    name = "local"
    max_payload_bytes = None

    def __init__(self) -> None:
        self._executors: dict[str, ThreadPoolExecutor] = {}

    def label(self, endpoint: str) -> str:
        return "local"

    def concurrency(self, endpoint: str) -> int:
        return 2  # one job running, the next one's payload ready

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult:
        executor = self._executors.get(endpoint)
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"worker-{endpoint}")
            self._executors[endpoint] = executor
        body = wire.dumps({"input": payload})
        loop = asyncio.get_running_loop()
        queued = time.perf_counter()
        reply, started, finished = await loop.run_in_executor(executor, _run_job, endpoint, body)
        result = wire.loads(reply)
        if "error" in result:
            raise JobFailed(f"{endpoint} job failed: {result['error']}", retryable=result.get("crashed", False))
        return JobResult(
            output=result["output"], execution_s=finished - started, delay_s=started - queued
        )

    async def aclose(self) -> dict[str, list[str]]:
        # Not waiting: after Ctrl-C a model call still running would hold the exit up
        # (it cannot be stopped midway); at a normal end nothing is running.
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors.clear()
        return {}


def _run_job(endpoint: str, body: bytes) -> tuple[bytes, float, float]:
    """What an endpoint does with a job: JSON in, `{"output"}` or `{"error"}` out, timed."""
    started = time.perf_counter()
    job = wire.loads(body)
    try:
        reply = {"output": get_handler(endpoint)(job["input"])}
    except WorkerInputError as exc:
        reply = {"error": str(exc)}
    except Exception as exc:  # the worker broke (a bug, out of memory): this job fails, may be retried
        reply = {"error": f"{type(exc).__name__}: {exc}", "crashed": True}
    return wire.dumps(reply), started, time.perf_counter()
