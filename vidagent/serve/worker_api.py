"""RunPod's worker job API, what the SDK's production loop calls:
`/v2/{endpoint}/job-take|job-take-batch|job-stop|job-done|job-stream|ping/{worker}`.

Authenticated by a per-server token in the query string (the SDK keeps a job-take URL's
query on every derived URL); never faulted: the SDK's own retries are not what drills test.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from .. import wire
from .hub import HUB, ApiError, disconnected, json_response, number
from .workers import WorkerRecord

log = logging.getLogger("vidagent.serve")

TAKE_HOLD_S = 2.0  # a job queued while a worker waits is handed over at once
STOP_HOLD_S = 20.0  # the SDK long-polls its stop channel; it sleeps 1 s after an empty answer


def routes(v2: str) -> list[tuple[str, tuple[str, ...], str, Any]]:
    return [
        ("worker.take", ("GET",), f"{v2}/job-take/{{worker}}", job_take),
        ("worker.take-batch", ("GET",), f"{v2}/job-take-batch/{{worker}}", job_take),
        ("worker.stop", ("GET",), f"{v2}/job-stop/{{worker}}", job_stop),
        ("worker.done", ("POST",), f"{v2}/job-done/{{worker}}/{{job_id}}", job_done),
        ("worker.stream", ("POST",), f"{v2}/job-stream/{{worker}}/{{job_id}}", job_stream),
        ("worker.ping", ("GET",), f"{v2}/ping/{{worker}}", ping),
    ]



async def job_take(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    record = _worker(request)
    hub.supervisor.mark_ready(record)
    count = 1
    if request.match_info.route.name == "worker.take-batch":
        count = max(1, min(64, int(number(request.query.get("batch_size", "1"), "batch_size"))))
    await hub.wait_for(lambda: hub.store.queued(record.endpoint) > 0, TAKE_HOLD_S)
    if hub.closing or not record.alive or record.retired or disconnected(request):
        return web.Response(status=204)
    jobs = hub.store.take(record.endpoint, record.id, count)
    if not jobs:
        return web.Response(status=204)
    for job in jobs:
        log.debug("job %s taken by %s", job.id, record.id)
    if request.match_info.route.name == "worker.take":
        return json_response(jobs[0].work_item())
    return json_response([job.work_item() for job in jobs])


async def job_stop(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    record = _worker(request)
    # A retired worker (a release replaced it) must see its SIGTERM soon, not in 20 s.
    await hub.wait_for(lambda: hub.store.has_stops(record.id) or record.retired, STOP_HOLD_S)
    if disconnected(request):
        return web.Response(status=204)  # the stops stay pending for its next poll
    job_ids = hub.store.pop_stops(record.id)
    if not job_ids:
        return web.Response(status=204)
    log.debug("worker %s told to stop %s", record.id, ", ".join(job_ids))
    return json_response({"jobsToStop": job_ids})


async def job_done(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    record = _worker(request)
    job_id = request.match_info["job_id"]
    result = await _worker_body(request)
    if hub.store.finish(record.id, job_id, result) is None:
        log.debug("ignored a result for job %s from %s (cancelled, timed out, expired or retried)", job_id, record.id)
    return web.Response(status=200)


async def job_stream(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    record = _worker(request)
    result = await _worker_body(request)
    hub.store.add_stream(record.id, request.match_info["job_id"], result.get("output"))
    return web.Response(status=200)


async def ping(request: web.Request) -> web.Response:
    record = _worker(request)
    record.last_ping_at = time.monotonic()
    if request.query.get("status") == "unhealthy":
        log.warning("worker %s reports itself unhealthy: %s: %s", record.id,
                    request.query.get("check", "?"), request.query.get("reason", ""))
    return web.Response(status=200)


def _worker(request: web.Request) -> WorkerRecord:
    hub = request.app[HUB]
    record = hub.supervisor.lookup(request.match_info["worker"]) if hub.supervisor else None
    if record is None or record.endpoint != request.match_info["endpoint"]:
        raise ApiError(404, "unknown worker")
    return record


async def _worker_body(request: web.Request) -> dict[str, Any]:
    # The SDK posts a JSON string labelled application/x-www-form-urlencoded.
    try:
        body = wire.loads(await request.read())
    except ValueError:
        raise ApiError(400, "job result is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "job result must be a JSON object")
    return body
