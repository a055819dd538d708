"""What every route of `vidagent serve` shares: the Hub (job store, workers, faults, keys),
its wake-up broadcast, the error type routes raise, and the small request helpers.

Long polls (job-take, job-stop, stream, runsync, openai) wait on one broadcast that the job
store fires on every change, and re-check their condition when woken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from aiohttp import ClientSession, ClientTimeout, web

from .. import wire
from .config import ServeConfig
from .faults import FaultInjector
from .jobs import Job, JobStore
from .workers import Supervisor

log = logging.getLogger("vidagent.serve")

TICK_S = 0.05  # resolution of executionTimeout, ttl and retention
WEBHOOK_ATTEMPTS = 3  # RunPod: the first call and 2 retries, 10 s apart
WEBHOOK_RETRY_S = 10.0


def json_response(body: Any, status: int = 200, headers=None) -> web.Response:
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

    def worker_states(self, endpoint: str) -> dict[str, int]:
        """/health's `workers`, with the keys RunPod's SDK docs showed there (idle,
        initializing, ready, running, throttled; `ready` counted as the idle ones, as in
        their examples) and REST v2's `unhealthy`. Serve has no host capacity to wait on and
        restarts a dead worker at once, so throttled and unhealthy stay 0."""
        states = {"idle": 0, "initializing": 0, "ready": 0, "running": 0, "throttled": 0, "unhealthy": 0}
        for record in self.supervisor.records(endpoint) if self.supervisor else []:
            if not record.alive:
                continue
            if record.ready_at is None:
                states["initializing"] += 1
            elif self.store.worker_jobs(record.id):
                states["running"] += 1
            else:
                states["idle"] += 1
                states["ready"] += 1
        return states

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


# -- request helpers --------------------------------------------------------------------


def endpoint_of(request: web.Request) -> str:
    name = request.match_info["endpoint"]
    if not request.app[HUB].store.has_endpoint(name):
        raise ApiError(404, f"endpoint {name!r} not found")
    return name


def job_of(request: web.Request) -> Job:
    endpoint = endpoint_of(request)
    job_id = request.match_info["job_id"]
    job = request.app[HUB].store.get(job_id)
    if job is None or job.endpoint != endpoint:
        raise ApiError(404, f"job {job_id} not found: unknown id, or its result has expired")
    return job


def number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"?{name} must be a number of milliseconds") from None
    if value < 0:
        raise ApiError(400, f"?{name} must not be negative")
    return value


async def read_json(request: web.Request, limit: int, route: str) -> tuple[Any, int]:
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


def disconnected(request: web.Request) -> bool:
    # aiohttp does not cancel a handler whose client left: never hand a job to a closed socket.
    return request.transport is None or request.transport.is_closing()
