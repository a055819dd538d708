"""The HTTP side: RunPod's client API, the worker job API its SDK polls, our admin routes.

- Client API, `/v2/{endpoint}/run|runsync|status|stream|cancel|retry|health|purge-queue`:
  what api.runpod.ai serves. Needs the API key when one is set; faults are injected here.
- OpenAI-compatible route, `/v2/{endpoint}/openai/v1/chat/completions|models`: what RunPod
  serves for its vLLM worker. Each request becomes a job `{"openai_route", "openai_input"}`
  on the endpoint's queue and is answered with the job's output; errors in OpenAI's shape.
  Key and faults as for the client API.
- Worker job API, `/v2/{endpoint}/job-take|job-take-batch|job-stop|job-done|job-stream|ping
  /{worker}`: what the SDK's production loop calls, authenticated by a per-server token in
  the query string (the SDK keeps a job-take URL's query on every derived URL).
- Admin, `/_vidagent/stats` and `/_vidagent/workers`: ours, for tests and drills.
- REST API, `/v1/templates|endpoints`: the part of RunPod's management API that `vidagent
  deploy` uses (rest.py); endpoints created there run serve's `images`. Key and faults as
  for the client API.

Long polls (job-take, job-stop, stream, runsync, openai) wait on one broadcast that the job store
fires on every change, and re-check their condition when woken.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import ClientSession, ClientTimeout, web

from .. import wire
from .config import ServeConfig
from .faults import FaultInjector
from .jobs import COMPLETED, FAILED, IN_QUEUE, TIMED_OUT, Job, JobStore, Policy
from .rest import RestApi
from .workers import Supervisor, WorkerRecord

log = logging.getLogger("vidagent.serve")

# RunPod's limits (docs: operation reference), in bytes; the decimal reading is the strict one.
RUN_LIMIT = 10_000_000
RUNSYNC_LIMIT = 20_000_000
# RunPod's documented minimums; smaller values are honoured here so drills run fast.
MIN_EXECUTION_TIMEOUT_MS = 5000
MIN_TTL_MS = 10_000

TAKE_HOLD_S = 2.0  # a job queued while a worker waits is handed over at once
STOP_HOLD_S = 20.0  # the SDK long-polls its stop channel; it sleeps 1 s after an empty answer
STREAM_HOLD_S = 2.0  # the SDK's stream() re-polls without sleeping
CLIENT_CHECK_S = 0.5  # how often an OpenAI request's wait looks for a client that left
TICK_S = 0.05  # resolution of executionTimeout, ttl and retention
WEBHOOK_ATTEMPTS = 3  # RunPod: the first call and 2 retries, 10 s apart
WEBHOOK_RETRY_S = 10.0


def _json(body: Any, status: int = 200, headers=None) -> web.Response:
    # job bodies are megabytes of base64: wire's encoder, not aiohttp's default json.dumps
    return web.Response(body=wire.dumps(body), status=status, headers=headers, content_type="application/json")


class ApiError(Exception):
    """An error answered as `{"error": message}` with an HTTP status (OpenAI's shape on the
    OpenAI routes, where `code` is its machine-readable code)."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class Broadcast:
    """Wakes every waiter at once; a waiter re-checks its own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class Hub:
    """Everything the routes share: the job store, the workers, faults, keys."""

    def __init__(self, config: ServeConfig, api_key: str | None, worker_token: str):
        self.config = config
        self.api_key = api_key or None
        self.worker_token = worker_token
        self.changes = Broadcast()
        self.store = JobStore(
            config.endpoints,
            retention_s=config.retention_s,
            sync_retention_s=config.sync_retention_s,
            on_final=self._finished,
            on_change=self.changes.fire,
        )
        self.faults = FaultInjector(config.faults)
        self.supervisor: Supervisor | None = None
        self.closing = False
        self.started_at = time.monotonic()
        self._warned: set[str] = set()
        self._webhooks: set[asyncio.Task] = set()
        self._http: ClientSession | None = None

    async def wait_for(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready() and not self.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await self.changes.wait(remaining)

    async def tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.store.tick()

    def close(self) -> None:
        """Release every long poll (workers see 204 and notice their SIGTERM)."""
        self.closing = True
        self.changes.fire()

    async def aclose(self) -> None:
        for task in self._webhooks:
            task.cancel()
        if self._http is not None:
            await self._http.close()

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    def _finished(self, job: Job) -> None:
        timing = ""
        if job.taken_at is not None:
            body = job.status_body()
            timing = f" (waited {body['delayTime']} ms, ran {body['executionTime']} ms)"
        log.info("job %s on %s: %s%s", job.id, job.endpoint, job.status, timing)
        if job.webhook:
            task = asyncio.ensure_future(self._call_webhook(job.webhook, job.status_body()))
            self._webhooks.add(task)
            task.add_done_callback(self._webhooks.discard)

    async def _call_webhook(self, url: str, body: dict[str, Any]) -> None:
        if self._http is None:
            self._http = ClientSession(timeout=ClientTimeout(total=10))
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                async with self._http.post(url, json=body) as response:
                    if response.status < 300:
                        return
                    problem = f"HTTP {response.status}"
            except Exception as exc:  # any failure of someone else's server is only logged
                problem = f"{type(exc).__name__}: {exc}"
            log.warning("webhook of job %s, attempt %d of %d: %s", body["id"], attempt, WEBHOOK_ATTEMPTS, problem)
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(WEBHOOK_RETRY_S)


HUB = web.AppKey("hub", Hub)


def build_app(hub: Hub) -> web.Application:
    app = web.Application(middlewares=[_gate], client_max_size=64 * 1024 * 1024)
    app[HUB] = hub
    v2 = "/v2/{endpoint}"
    routes: list[tuple[str, tuple[str, ...], str, Any]] = [
        ("client.run", ("POST",), f"{v2}/run", run),
        ("client.runsync", ("POST",), f"{v2}/runsync", runsync),
        ("client.status", ("GET", "POST"), f"{v2}/status/{{job_id}}", status),
        ("client.stream", ("GET", "POST"), f"{v2}/stream/{{job_id}}", stream),
        ("client.cancel", ("POST",), f"{v2}/cancel/{{job_id}}", cancel),
        ("client.retry", ("POST",), f"{v2}/retry/{{job_id}}", retry),
        ("client.health", ("GET",), f"{v2}/health", health),
        ("client.purge", ("POST",), f"{v2}/purge-queue", purge_queue),
        ("openai.chat", ("POST",), f"{v2}/openai/v1/chat/completions", openai_chat),
        ("openai.models", ("GET",), f"{v2}/openai/v1/models", openai_models),
        ("worker.take", ("GET",), f"{v2}/job-take/{{worker}}", job_take),
        ("worker.take-batch", ("GET",), f"{v2}/job-take-batch/{{worker}}", job_take),
        ("worker.stop", ("GET",), f"{v2}/job-stop/{{worker}}", job_stop),
        ("worker.done", ("POST",), f"{v2}/job-done/{{worker}}/{{job_id}}", job_done),
        ("worker.stream", ("POST",), f"{v2}/job-stream/{{worker}}/{{job_id}}", job_stream),
        ("worker.ping", ("GET",), f"{v2}/ping/{{worker}}", ping),
        ("admin.stats", ("GET",), "/_vidagent/stats", admin_stats),
        ("admin.workers", ("GET",), "/_vidagent/workers", admin_workers),
    ]
    for name, methods, path, handler in routes:
        resource = app.router.add_resource(path, name=name)
        for method in methods:
            resource.add_route(method, handler)
    RestApi(hub).add_routes(app)
    return app


# -- middleware: faults, auth, wake-ups -----------------------------------------------


@web.middleware
async def _gate(request: web.Request, handler):
    hub = request.app[HUB]
    kind = (getattr(request.match_info.route, "name", None) or "").split(".")[0]
    # The OpenAI and REST routes are client routes too: their clients retry what faults inject.
    if kind in ("client", "openai", "rest"):
        if hub.faults.delay_s:
            await asyncio.sleep(hub.faults.delay_s)
        fault = hub.faults.draw()
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else None
            return _error(kind, fault.status, f"injected fault: HTTP {fault.status}", headers=headers)
    if kind in ("client", "openai", "rest", "admin") and hub.api_key and not _has_key(request, hub.api_key):
        return _error(kind, 401, "unauthorized: send the API key as 'Authorization: Bearer KEY'", code="invalid_api_key")
    if kind == "worker" and not hmac.compare_digest(request.query.get("token", "").encode(), hub.worker_token.encode()):
        return _json({"error": "unauthorized worker"}, status=401)
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(kind, exc.status, exc.message, code=exc.code)


# OpenAI's error types by status; its SDK picks the exception class by status alone.
_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                       410: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
                       504: "timeout_error"}


def _error(kind: str, status: int, message: str, code: str | None = None, headers=None) -> web.Response:
    """RunPod's `{"error": message}`, or OpenAI's `{"error": {message, type, param, code}}`."""
    if kind != "openai":
        return _json({"error": message}, status=status, headers=headers)
    kind_of_error = _OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind_of_error, "param": None, "code": code}}
    return _json(body, status=status, headers=headers)


def _has_key(request: web.Request, key: str) -> bool:
    given = request.headers.get("Authorization", "").strip()
    if given[:7].lower() == "bearer ":
        given = given[7:].strip()
    return hmac.compare_digest(given.encode(), key.encode())


# -- client API -----------------------------------------------------------------------


async def run(request: web.Request) -> web.Response:
    job = await _submit(request, sync=False)
    return _json({"id": job.id, "status": job.status})


async def runsync(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = await _submit(request, sync=True)
    wait_s = hub.config.runsync_wait_s
    if "wait" in request.query:  # RunPod: ?wait=ms, 1000 to 300000
        wait_s = min(300.0, max(1.0, _number(request.query["wait"], "wait") / 1000))
    await hub.wait_for(lambda: job.final or hub.store.get(job.id) is None, wait_s)
    return _json(job.status_body())


async def status(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = _job(request)
    if "ttl" in request.query:  # RunPod: keep this finished result only this much longer
        hub.store.keep_for(job.id, _number(request.query["ttl"], "ttl") / 1000)
    return _json(job.status_body())


async def stream(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = _job(request)
    await hub.wait_for(lambda: job.stream_read < len(job.stream) or job.final, STREAM_HOLD_S)
    chunks = hub.store.read_stream(job.id)
    return _json({"status": job.status, "stream": [{"output": c} for c in chunks]})


async def cancel(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = hub.store.cancel(_job(request).id)
    assert job is not None
    return _json({"id": job.id, "status": job.status})


async def retry(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    job = hub.store.retry(_job(request).id)
    assert job is not None
    if job.status != IN_QUEUE:
        raise ApiError(400, f"only FAILED or TIMED_OUT jobs can be retried; job {job.id} is {job.status}")
    return _json({"id": job.id, "status": job.status})


async def health(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    endpoint = _endpoint(request)
    counters = hub.store.counters[endpoint]
    counts = hub.store.counts(endpoint)
    return _json({
        "jobs": {
            "completed": counters.final[COMPLETED],
            "failed": counters.final[FAILED],
            "inProgress": counts["in_progress"],
            "inQueue": counts["in_queue"],
            "retried": counters.retried,
        },
        "workers": _worker_states(hub, endpoint),
    })


async def purge_queue(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    removed = hub.store.purge(_endpoint(request))
    return _json({"removed": removed, "status": "completed"})


async def _submit(request: web.Request, sync: bool) -> Job:
    hub = request.app[HUB]
    endpoint = _endpoint(request)
    limit = RUNSYNC_LIMIT if sync else RUN_LIMIT
    body, size = await _read_json(request, limit, "/runsync" if sync else "/run")
    if not isinstance(body, dict) or "input" not in body:
        raise ApiError(400, 'request body needs an "input" field: {"input": {...}}')
    webhook = body.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
        raise ApiError(400, '"webhook" must be an http(s) URL')
    extra = {"s3Config": body["s3Config"]} if "s3Config" in body else None
    job = hub.store.submit(endpoint, body["input"], _policy(hub, body.get("policy")), sync=sync, webhook=webhook, extra=extra)
    log.debug("job %s queued on %s (%d bytes)", job.id, endpoint, size)
    return job


async def _read_json(request: web.Request, limit: int, route: str) -> tuple[Any, int]:
    """The request's JSON body and its size, refused with 413 over RunPod's limit."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"request body too large; {route} accepts at most {limit // 1_000_000} MB",
                       code="request_too_large") from None
    if len(raw) > limit:
        raise ApiError(413, f"request body is {len(raw)} bytes; {route} accepts at most {limit // 1_000_000} MB "
                            f"({limit} bytes)", code="request_too_large")
    try:
        return wire.loads(raw), len(raw)
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None


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


def _endpoint(request: web.Request) -> str:
    name = request.match_info["endpoint"]
    if not request.app[HUB].store.has_endpoint(name):
        raise ApiError(404, f"endpoint {name!r} not found")
    return name


def _job(request: web.Request) -> Job:
    endpoint = _endpoint(request)
    job_id = request.match_info["job_id"]
    job = request.app[HUB].store.get(job_id)
    if job is None or job.endpoint != endpoint:
        raise ApiError(404, f"job {job_id} not found: unknown id, or its result has expired")
    return job


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"?{name} must be a number of milliseconds") from None
    if value < 0:
        raise ApiError(400, f"?{name} must not be negative")
    return value


def _worker_states(hub: Hub, endpoint: str) -> dict[str, int]:
    states = {"idle": 0, "running": 0, "initializing": 0}
    for record in hub.supervisor.records(endpoint) if hub.supervisor else []:
        if not record.alive:
            continue
        if record.ready_at is None:
            states["initializing"] += 1
        elif hub.store.worker_jobs(record.id):
            states["running"] += 1
        else:
            states["idle"] += 1
    return states


# -- OpenAI-compatible route (RunPod's vLLM worker) -----------------------------------

OPENAI_CHAT_ROUTE = "/v1/chat/completions"
OPENAI_MODELS_ROUTE = "/v1/models"


async def openai_chat(request: web.Request) -> web.Response:
    endpoint = _endpoint(request)
    body, _ = await _read_json(request, RUNSYNC_LIMIT, "the OpenAI route")
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object (a chat completions request)")
    if body.get("stream"):
        raise ApiError(400, 'streaming is not supported by vidagent serve; send "stream": false')
    return await _openai_job(request, endpoint, OPENAI_CHAT_ROUTE, body)


async def openai_models(request: web.Request) -> web.Response:
    return await _openai_job(request, _endpoint(request), OPENAI_MODELS_ROUTE, {})


async def _openai_job(request: web.Request, endpoint: str, route: str, body: dict[str, Any]) -> web.Response:
    """Queue the request as RunPod's platform does, wait, answer with the job's output."""
    hub = request.app[HUB]
    job = hub.store.submit(endpoint, {"openai_route": route, "openai_input": body}, Policy(), sync=True, source="openai")
    log.debug("job %s queued on %s for %s", job.id, endpoint, route)
    if not await _await_job(request, job, hub.config.openai_wait_s):
        # Nobody will collect the result: stop the work. The openai SDK retries a timeout
        # or a 504 with a new request, and two generations of one caption would share the GPU.
        log.info("job %s on %s cancelled: %s", job.id, endpoint, _why_unfinished(request))
        hub.store.cancel(job.id)
        if hub.closing:
            raise ApiError(503, "vidagent serve is stopping", code="server_stopping")
        raise ApiError(504, f"no result within {hub.config.openai_wait_s:g} s (openai_wait_s); job {job.id} "
                            "was cancelled", code="timeout")
    return openai_answer(job)


def _why_unfinished(request: web.Request) -> str:
    hub = request.app[HUB]
    if hub.closing:
        return "the server is stopping"
    if _disconnected(request):
        return "its client left"
    return f"no result within openai_wait_s ({hub.config.openai_wait_s:g} s)"


async def _await_job(request: web.Request, job: Job, wait_s: float) -> bool:
    """True once the job is final or gone; False when the wait ran out, the client left or
    the server is stopping. aiohttp does not cancel a handler whose client left, hence
    the regular look at the socket."""
    hub = request.app[HUB]
    settled = lambda: job.final or hub.store.get(job.id) is None  # noqa: E731
    deadline = time.monotonic() + wait_s
    while not settled():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or hub.closing or _disconnected(request):
            return False
        await hub.wait_for(settled, min(remaining, CLIENT_CHECK_S))
    return True


def openai_answer(job: Job) -> web.Response:
    if job.status == COMPLETED:
        if job.result.get("output") is None:
            raise ApiError(500, f"job {job.id}: the worker returned no output", code="empty_output")
        return _json(job.result["output"])
    if job.status == FAILED:
        raise _openai_failure(job.result.get("error"))
    if job.status == TIMED_OUT:
        raise ApiError(504, f"job {job.id} ran longer than its executionTimeout "
                            f"({job.policy.execution_timeout_s:g} s) and was stopped", code="timeout")
    # Cancelled through /cancel, or purged or expired while queued: not worth a retry.
    raise ApiError(410, f"job {job.id} was cancelled or removed before it finished", code="job_cancelled")


@dataclass(frozen=True)
class WorkerFailure:
    message: str  # one line
    crashed: bool  # the handler raised (the SDK's JSON report), rather than refusing the input


def worker_failure(error: Any) -> WorkerFailure:
    """A FAILED job's `error` in one line. The SDK reports a handler exception as a JSON
    string with its type and traceback; a handler that refuses its input returns a message.
    (The same reading as vidagent.transports.runpod.worker_error, which serve may not import,
    except that a multi-line message is joined, not cut to its last line.)"""
    if isinstance(error, str):
        try:
            details = wire.loads(error)
        except ValueError:
            details = None
        if isinstance(details, dict) and "error_message" in details:
            kind = str(details.get("error_type", "")).removeprefix("<class '").removesuffix("'>")
            message = _one_line(str(details["error_message"]))
            return WorkerFailure(f"{kind}: {message}" if kind else message, crashed=True)
    if isinstance(error, dict) and "message" in error:  # an OpenAI-style error object
        error = error["message"]
    return WorkerFailure(_one_line(str(error)) if error else "unknown error", crashed=False)


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _openai_failure(error: Any) -> ApiError:
    """The status OpenAI (and vLLM) would give: the openai SDK raises by status, and
    vidagent's OpenAI transport tells a wrong model name (404) from a bad request (400)."""
    failure = worker_failure(error)
    if failure.crashed:
        return ApiError(500, f"the worker's handler failed: {failure.message}", code="worker_error")
    lower = failure.message.lower()
    if "context length" in lower:
        return ApiError(400, failure.message, code="context_length_exceeded")
    if _says_model_missing(lower):
        return ApiError(404, failure.message, code="model_not_found")
    return ApiError(400, failure.message)


def _says_model_missing(lower: str) -> bool:
    # vLLM: "The model `x` does not exist."; vidagent's vlm worker: "VLM 'x' cannot be
    # loaded: unknown offline VLM …"; others: "model … not found".
    names_a_model = "model" in lower or "vlm" in lower
    return names_a_model and any(words in lower for words in ("not found", "does not exist", "unknown offline"))


# -- worker job API -------------------------------------------------------------------


async def job_take(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    record = _worker(request)
    hub.supervisor.mark_ready(record)
    count = 1
    if request.match_info.route.name == "worker.take-batch":
        count = max(1, min(64, int(_number(request.query.get("batch_size", "1"), "batch_size"))))
    await hub.wait_for(lambda: hub.store.queued(record.endpoint) > 0, TAKE_HOLD_S)
    if hub.closing or not record.alive or record.retired or _disconnected(request):
        return web.Response(status=204)
    jobs = hub.store.take(record.endpoint, record.id, count)
    if not jobs:
        return web.Response(status=204)
    for job in jobs:
        log.debug("job %s taken by %s", job.id, record.id)
    if request.match_info.route.name == "worker.take":
        return _json(jobs[0].work_item())
    return _json([job.work_item() for job in jobs])


async def job_stop(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    record = _worker(request)
    # A retired worker (a release replaced it) must see its SIGTERM soon, not in 20 s.
    await hub.wait_for(lambda: hub.store.has_stops(record.id) or record.retired, STOP_HOLD_S)
    if _disconnected(request):
        return web.Response(status=204)  # the stops stay pending for its next poll
    job_ids = hub.store.pop_stops(record.id)
    if not job_ids:
        return web.Response(status=204)
    log.debug("worker %s told to stop %s", record.id, ", ".join(job_ids))
    return _json({"jobsToStop": job_ids})


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


def _disconnected(request: web.Request) -> bool:
    # aiohttp does not cancel a handler whose client left: never hand a job to a closed socket.
    return request.transport is None or request.transport.is_closing()


# -- admin ----------------------------------------------------------------------------


async def admin_stats(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    endpoints = {}
    for name, counters in hub.store.counters.items():
        counts = hub.store.counts(name)
        endpoints[name] = {
            "accepted": {"run": counters.accepted_run, "runsync": counters.accepted_runsync},
            # Beside "accepted", not in it: scripts compare that object whole.
            "openai": {"accepted": counters.accepted_openai},
            "final": dict(counters.final),
            "retried": counters.retried,
            "expired": counters.expired,
            "purged": counters.purged,
            "in_queue": counts["in_queue"],
            "in_progress": counts["in_progress"],
            "workers": _worker_states(hub, name),
        }
    return _json({
        "uptime_s": round(time.monotonic() - hub.started_at, 3),
        "endpoints": endpoints,
        "faults": {"injected": {str(code): n for code, n in sorted(hub.faults.injected.items())}},
    })


async def admin_workers(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    now = time.monotonic()
    workers = [
        {
            "id": record.id,
            "endpoint": record.endpoint,
            "pid": record.pid,
            "alive": record.alive,
            "ready": record.ready_at is not None,
            "exit_code": record.exit_code,
            "jobs_in_progress": hub.store.worker_jobs(record.id),
            "uptime_s": round((record.exited_at or now) - record.started_at, 3),
            "last_ping_s_ago": None if record.last_ping_at is None else round(now - record.last_ping_at, 3),
        }
        for record in (hub.supervisor.records() if hub.supervisor else [])
    ]
    return _json({"workers": workers})
