"""RunPod's client API, what api.runpod.ai serves for a queue-based endpoint:
`/v2/{endpoint}/run|runsync|status|stream|cancel|retry|health|purge-queue`.

Shapes, limits and defaults follow RunPod's operation reference
(docs.runpod.io/serverless/endpoints/operation-reference) and RunPod's own SDK as a client
(tests/test_serve_sdk.py drives these routes with `runpod.Endpoint`).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .hub import HUB, ApiError, Hub, endpoint_of, job_of, json_response, number, read_json
from .jobs import COMPLETED, FAILED, IN_QUEUE, Job, Policy

log = logging.getLogger("vidagent.serve")

# RunPod's limits (docs: operation reference), in bytes; the decimal reading is the strict one.
RUN_LIMIT = 10_000_000
RUNSYNC_LIMIT = 20_000_000
# RunPod's documented minimums; smaller values are honoured here so drills run fast.
MIN_EXECUTION_TIMEOUT_MS = 5000
MIN_TTL_MS = 10_000

STREAM_HOLD_S = 2.0  # the SDK's stream() re-polls without sleeping


def routes(v2: str) -> list[tuple[str, tuple[str, ...], str, Any]]:
    return [
        ("client.run", ("POST",), f"{v2}/run", run),
        ("client.runsync", ("POST",), f"{v2}/runsync", runsync),
        ("client.status", ("GET", "POST"), f"{v2}/status/{{job_id}}", status),
        ("client.stream", ("GET", "POST"), f"{v2}/stream/{{job_id}}", stream),
        ("client.cancel", ("POST",), f"{v2}/cancel/{{job_id}}", cancel),
        ("client.retry", ("POST",), f"{v2}/retry/{{job_id}}", retry),
        ("client.health", ("GET",), f"{v2}/health", health),
        ("client.purge", ("POST",), f"{v2}/purge-queue", purge_queue),
    ]


async def run(request: web.Request) -> web.Response:
    job = await _submit(request, sync=False)
    return json_response({"id": job.id, "status": job.status})


async def runsync(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = await _submit(request, sync=True)
    wait_s = hub.config.runsync_wait_s
    if "wait" in request.query:  # RunPod: ?wait=ms, 1000 to 300000
        wait_s = min(300.0, max(1.0, number(request.query["wait"], "wait") / 1000))
    await hub.wait_for(lambda: job.final or hub.store.get(job.id) is None, wait_s)
    return json_response(job.status_body())


async def status(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = job_of(request)
    if "ttl" in request.query:  # RunPod: keep this finished result only this much longer
        hub.store.keep_for(job.id, number(request.query["ttl"], "ttl") / 1000)
    return json_response(job.status_body())


async def stream(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = job_of(request)
    await hub.wait_for(lambda: job.stream_read < len(job.stream) or job.final, STREAM_HOLD_S)
    chunks = hub.store.read_stream(job.id)
    return json_response({"status": job.status, "stream": [{"output": c} for c in chunks]})


async def cancel(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = hub.store.cancel(job_of(request).id)
    assert job is not None
    return json_response({"id": job.id, "status": job.status})


async def retry(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = hub.store.retry(job_of(request).id)
    assert job is not None
    if job.status != IN_QUEUE:
        raise ApiError(400, f"only FAILED or TIMED_OUT jobs can be retried; job {job.id} is {job.status}")
    return json_response({"id": job.id, "status": job.status})


async def health(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    endpoint = endpoint_of(request)
    counters = hub.store.counters[endpoint]
    counts = hub.store.counts(endpoint)
    return json_response({
        "jobs": {
            "completed": counters.final[COMPLETED],
            "failed": counters.final[FAILED],
            "inProgress": counts["in_progress"],
            "inQueue": counts["in_queue"],
            "retried": counters.retried,
        },
        "workers": hub.worker_states(endpoint),
    })


async def purge_queue(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    removed = hub.store.purge(endpoint_of(request))
    return json_response({"removed": removed, "status": "completed"})


async def _submit(request: web.Request, sync: bool) -> Job:
    hub = request.app[HUB]
    endpoint = endpoint_of(request)
    limit = RUNSYNC_LIMIT if sync else RUN_LIMIT
    body, size = await read_json(request, limit, "/runsync" if sync else "/run")
    if not isinstance(body, dict) or "input" not in body:
        raise ApiError(400, 'request body needs an "input" field: {"input": {...}}')
    webhook = body.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
        raise ApiError(400, '"webhook" must be an http(s) URL')
    extra = {"s3Config": body["s3Config"]} if "s3Config" in body else None
    job = hub.store.submit(endpoint, body["input"], _policy(hub, body.get("policy")), sync=sync, webhook=webhook, extra=extra)
    log.debug("job %s queued on %s (%d bytes)", job.id, endpoint, size)
    return job


def _policy(hub: Hub, raw: Any) -> Policy:
    if raw is None:
        return Policy()
    if not isinstance(raw, dict):
        raise ApiError(400, '"policy" must be an object')
    defaults = Policy()
    values = {}
    for key, attr, minimum in (
        ("executionTimeout", "execution_timeout_s", MIN_EXECUTION_TIMEOUT_MS),
        ("ttl", "ttl_s", MIN_TTL_MS),
    ):
        value = raw.get(key)
        if value is None:
            values[attr] = getattr(defaults, attr)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ApiError(400, f'"policy.{key}" must be a positive number of milliseconds')
        if value < minimum:
            hub.warn_once(key, f"policy.{key} {value:g} ms is below RunPod's minimum ({minimum} ms): "
                               "honoured here, not by RunPod")
        values[attr] = value / 1000
    return Policy(**values)
