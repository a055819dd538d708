"""Run a worker as a RunPod serverless worker (what `endpoints/*/handler.py` call).

The model loads once, before the worker takes its first job. The handler is async and
runs the blocking model call in a thread, so the SDK's event loop keeps polling, sending
heartbeats and reading stop signals while a job runs.

`concurrency` jobs may be in the worker at once. The model itself runs one job at a time
(the workers lock it), but the SDK pauses 1 s before taking more jobs once a worker is
full, so a worker that held only one job would idle after each short one; holding several
keeps the GPU busy while their inputs are decoded (docs/benchmarks.md).
VIDAGENT_WORKER_CONCURRENCY overrides the shim's default.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable

from . import WorkerInputError


def make_handler(handle: Callable[[dict[str, Any]], dict[str, Any]]):
    async def handler(job: dict[str, Any]) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(handle, job["input"])
        except WorkerInputError as exc:
            # A clean one-line error: the client shows it and does not retry.
            return {"error": str(exc)}

    return handler


def start(
    handle: Callable[[dict[str, Any]], dict[str, Any]],
    load: Callable[[], Any] | None = None,
    concurrency: int = 4,
) -> None:
    import runpod

    if load is not None:
        load()
    concurrency = int(os.environ.get("VIDAGENT_WORKER_CONCURRENCY", concurrency))
    runpod.serverless.start(
        {"handler": make_handler(handle), "concurrency_modifier": lambda current: concurrency}
    )
