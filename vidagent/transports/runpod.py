"""RunPod serverless endpoints over their job API (`/run`, `/status`, `/cancel`, `/health`).

Billing safety first. RunPod bills every job a worker runs, and `/run` has no idempotency
key, so a `/run` is sent again only when RunPod cannot have accepted it: the connection was
never made (`retry.never_sent`), or RunPod answered 429, which its docs define as a request
over the rate limit, refused. A read timeout, a connection dropped after the body was sent
or a 5xx may hide an accepted job: that job fails here, once, with a message saying so
(its id is unknown, so it cannot be tracked or cancelled), and is never resent. Reads
(`/status`, `/health`) and `/cancel` are idempotent and retried on 5xx and timeouts too;
every retry goes through vidagent/retry.py's RetryPolicy.

Every job started is tracked (runpod_jobs.LiveJobs) until its final state is seen or its
cancel is confirmed. A job given up on (its caller cancelled by Ctrl-C, SIGTERM or a failed
sibling; a failed status read; the queue deadline) is cancelled in the background within
RunPod's cancel limits; `aclose()` waits for those answers and returns the ids it could not
confirm, which the CLI prints. A job no worker takes within `runpod_queue_timeout_s`, while
the endpoint's /health shows no worker running, is cancelled and fails with a one-line
diagnosis. A FAILED job is never resent here; JobFailed.retryable says whether the worker
broke (an exception the SDK reported, not WorkerInputError) or refused its input.

The API key goes into the Authorization header and nowhere else, and only over https or to
a loopback address: no message, log line or report of this module contains it.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Awaitable, Callable

import httpx

from .. import wire
from ..config import Settings
from ..errors import BackendError, ConfigError, JobTimeout
from ..retry import GaveUp, RetryPolicy, TryAgain, never_sent, retry_after
from . import JobResult
from .hosts import check_key_destination
from .runpod_jobs import RUNPOD_LIMITS, Canceller, Limiter, LiveJobs, RateLimit
from .runpod_status import diagnose, job_result

MAX_RUN_BYTES = 10_000_000  # RunPod's /run body limit ("10 MB"; the stricter reading)
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
# Status polling learns how long this endpoint's jobs take (submit to done, a moving
# average): the first poll comes when that much time has passed, later ones every eighth
# of it. Without history it polls at 50 ms, growing 1.3x. Measured: fixed 0.25 s growing
# to 3 s left the workers idle most of the time; fixed 50 ms growing to 1 s cost ~10 status
# calls a job; a first poll at 80% of the typical time ~2.2, at 100% ~1.7 (docs/benchmarks.md).
_POLL_MIN_S, _POLL_GROWTH, _POLL_MAX_S = 0.05, 1.3, 1.0
_LATENCY_WEIGHT = 0.2  # of the newest job in the moving average
# Cancels happen on the way out: short waits, and a bound on the whole drain.
CANCEL_RETRIES, CANCEL_DRAIN_S = 5, 30.0
HEALTH_FRESH_S = 5.0  # one /health answer serves every job that asks within this long

Sleep = Callable[[float], Awaitable[None]]


class _Lost(Exception):
    """A /run whose answer did not arrive: RunPod may have accepted the job."""


class RunPodTransport:
    name = "runpod"
    max_payload_bytes = MAX_RUN_BYTES - 4096  # room for the envelope around the input

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        limits: dict[str, RateLimit] | None = None,
    ):
        if settings.runpod_api_key is None or not settings.runpod_api_key.get_secret_value():
            raise ConfigError(
                "RUNPOD_API_KEY is not set: export it or put RUNPOD_API_KEY=... in ./.env "
                "(create a key in the RunPod console under Settings > API Keys)"
            )
        self.settings = settings
        self.base_url = settings.runpod_base_url.rstrip("/")
        check_key_destination(self.base_url, "RUNPOD_BASE_URL")
        self._http = http or httpx.AsyncClient(timeout=settings.runpod_request_timeout_s)
        self._auth = {"Authorization": f"Bearer {settings.runpod_api_key.get_secret_value()}"}
        self._sleep = sleep
        self._clock = clock
        self._policy = RetryPolicy(retries=settings.runpod_max_retries, jitter=jitter)
        self._cancel_policy = RetryPolicy(retries=CANCEL_RETRIES, max_s=5.0, max_retry_after_s=10.0, jitter=jitter)
        self._limit_table = limits or RUNPOD_LIMITS
        self._limiters: dict[tuple[str, str], Limiter] = {}
        self._latency: dict[str, float] = {}  # endpoint id -> typical seconds from submit to done
        self._health: dict[str, tuple[float, dict[str, Any] | None, str | None]] = {}
        self.live = LiveJobs()
        self._runs_in_flight: set[asyncio.Future] = set()  # /runs whose callers were cancelled
        self._canceller = Canceller(self.live, self._cancel_one)
        self.status_calls = 0
        self.cancel_calls = 0

    def label(self, endpoint: str) -> str:
        return "runpod"

    def concurrency(self, endpoint: str) -> int:
        return self.settings.runpod_concurrency

    async def submit(self, endpoint: str, payload: dict[str, Any]) -> JobResult:
        endpoint_id = self.settings.endpoint_id(endpoint)
        if not endpoint_id:
            variable = f"RUNPOD_{endpoint.upper()}_ENDPOINT_ID"
            raise ConfigError(f"{variable} is not set: the {endpoint} stage has no RunPod endpoint")
        body = wire.dumps(
            {
                "input": payload,
                "policy": {
                    "executionTimeout": int(self.settings.runpod_execution_timeout_s * 1000),
                    "ttl": int(self.settings.runpod_ttl_s * 1000),
                },
            }
        )
        if len(body) > MAX_RUN_BYTES:
            raise BackendError(
                f"{endpoint} job is {len(body) / 1e6:.1f} MB, over RunPod's 10 MB /run limit"
            )
        submitted = self._clock()
        label = f"{endpoint} (endpoint {endpoint_id})"
        run = asyncio.ensure_future(self._call("run", "POST", f"/{endpoint_id}/run", body=body, resend=False))
        try:
            # Shielded: a caller cancelled mid-request must not lose the id of a job that
            # RunPod accepts anyway; it is tracked and cancelled when the answer comes.
            job = await asyncio.shield(run)
        except asyncio.CancelledError:
            self._runs_in_flight.add(run)
            run.add_done_callback(lambda done: self._adopt(done, label, endpoint_id))
            raise
        except _Lost as exc:
            raise BackendError(
                f"{endpoint}: the answer to POST /run was lost ({exc}); the job may be running on "
                f"endpoint {endpoint_id}, so it is not sent again (it would run, and bill, twice)"
            ) from None
        job_id = str(job["id"])
        self.live.add(label, endpoint_id, job_id)
        try:
            status = await self._wait(endpoint, endpoint_id, job_id, submitted)
        except BaseException:
            # Given up on (cancelled, a failed read, the queue deadline): stop it, in the
            # background and within RunPod's cancel limits, so that billing stops.
            if (endpoint_id, job_id) in self.live:
                self._canceller.request(endpoint_id, job_id)
            raise
        self.live.discard(endpoint_id, job_id)
        return job_result(endpoint, job_id, status)

    def _adopt(self, run: asyncio.Future, label: str, endpoint_id: str) -> None:
        """A /run whose caller left before the answer: track the job it started, and stop it."""
        self._runs_in_flight.discard(run)
        if run.cancelled() or run.exception() is not None:
            return  # refused, or its answer lost: no id to track (the caller was told nothing)
        job_id = str(run.result()["id"])
        self.live.add(label, endpoint_id, job_id)
        self._canceller.request(endpoint_id, job_id)

    async def aclose(self) -> dict[str, list[str]]:
        """Cancel what is still live and return the ids not confirmed cancelled."""
        try:
            if self._runs_in_flight:
                await asyncio.wait(set(self._runs_in_flight), timeout=self.settings.runpod_request_timeout_s)
            return await self._canceller.drain(CANCEL_DRAIN_S)
        finally:
            await self._http.aclose()

    # -- waiting ------------------------------------------------------------------------

    async def _wait(self, endpoint: str, endpoint_id: str, job_id: str, submitted: float) -> dict[str, Any]:
        typical = self._latency.get(endpoint_id)
        if typical is None:
            first, step = _POLL_MIN_S, _POLL_MIN_S
        else:
            first = min(max(_POLL_MIN_S, typical), 10 * _POLL_MAX_S)
            step = min(max(_POLL_MIN_S, typical / 8), _POLL_MAX_S)
        queue_timeout = self.settings.runpod_queue_timeout_s
        deadline = submitted + queue_timeout if queue_timeout else None
        await self._sleep(first)
        while True:
            self.status_calls += 1
            status = await self._call("status", "GET", f"/{endpoint_id}/status/{job_id}", missing_ok=True)
            if status is None:
                self.live.discard(endpoint_id, job_id)  # gone: nothing runs, nothing to cancel
                raise BackendError(
                    f"{endpoint} job {job_id} is gone (404): its runpod_ttl_s "
                    f"({self.settings.runpod_ttl_s:g} s) passed or its result expired before it was "
                    "read; not resubmitted, since it may have run"
                )
            state = status.get("status")
            if state in FINAL_STATES:
                if state == "COMPLETED":
                    self._learn(endpoint_id, self._clock() - submitted)
                return status
            now = self._clock()
            if state == "IN_QUEUE" and deadline is not None and now >= deadline:
                diagnosis, moving = await self._diagnose(endpoint_id)
                if not moving:
                    confirmed = await asyncio.shield(self._canceller.request(endpoint_id, job_id))
                    raise JobTimeout(
                        f"{endpoint} job {job_id} waited {now - submitted:.0f} s with no worker taking it "
                        f"(runpod_queue_timeout_s {queue_timeout:g}): {diagnosis}; "
                        + ("it was cancelled" if confirmed else "its cancel could not be confirmed")
                    )
                deadline = now + queue_timeout  # workers are busy with jobs: ours waits its turn
            await self._sleep(step)
            step = min(_POLL_MAX_S, step * _POLL_GROWTH)

    def _learn(self, endpoint_id: str, seconds: float) -> None:
        old = self._latency.get(endpoint_id)
        self._latency[endpoint_id] = seconds if old is None else old + _LATENCY_WEIGHT * (seconds - old)

    async def _diagnose(self, endpoint_id: str) -> tuple[str, bool]:
        """Why nothing takes jobs, in a few words, from /health; and whether the queue is
        moving anyway (workers running jobs ahead of ours)."""
        health, problem = await self._read_health(endpoint_id)
        if health is None:
            return f"the endpoint's /health could not be read ({problem})", False
        return diagnose(health)

    async def workers(self, endpoint: str) -> int | None:
        """Workers the endpoint has now (idle, ready, running, initializing), from /health;
        None when it cannot say. The segment path sizes its segments by it."""
        endpoint_id = self.settings.endpoint_id(endpoint)
        health, _ = await self._read_health(endpoint_id) if endpoint_id else (None, None)
        counts = (health or {}).get("workers")
        if not isinstance(counts, dict):
            return None
        total = sum(int(counts.get(k) or 0) for k in ("idle", "ready", "running", "initializing"))
        return total or None

    async def _read_health(self, endpoint_id: str) -> tuple[dict[str, Any] | None, str | None]:
        cached = self._health.get(endpoint_id)
        if cached is not None and self._clock() - cached[0] < HEALTH_FRESH_S:
            return cached[1], cached[2]
        try:
            health, problem = await self._call("health", "GET", f"/{endpoint_id}/health"), None
        except (BackendError, ConfigError) as exc:
            health, problem = None, str(exc)
        self._health[endpoint_id] = (self._clock(), health, problem)
        return health, problem

    # -- cancelling ---------------------------------------------------------------------

    async def _cancel_one(self, endpoint_id: str, job_id: str) -> bool:
        """One job's cancel, retried while RunPod refuses or fails; True once the answer
        says the job is not running (cancelled, already final, or gone)."""
        path = f"/{endpoint_id}/cancel/{job_id}"

        async def attempt() -> bool:
            self.cancel_calls += 1
            response = await self._send("cancel", "POST", endpoint_id, path, retryable=True)
            if response.status_code == 404:
                return True
            if response.status_code >= 400:
                return False  # refused for good (a bad key): not confirmed
            try:
                state = wire.loads(response.content).get("status")
            except (ValueError, AttributeError):
                raise TryAgain(f"RunPod sent an unreadable answer to POST {path}") from None
            if state in FINAL_STATES:
                return True
            raise TryAgain(f"POST {path} answered {state}")

        try:
            return await self._cancel_policy.call_async(attempt, sleep=self._sleep)
        except GaveUp:
            return False

    # -- HTTP -----------------------------------------------------------------------------

    async def _call(
        self, op: str, method: str, path: str, body: bytes | None = None,
        missing_ok: bool = False, resend: bool = True,
    ) -> dict[str, Any] | None:
        """One API call with its retries; its JSON answer. `resend=False` for a request
        that may create a job: a lost answer raises _Lost instead of being retried."""
        what = f"{method} {path}"
        endpoint_id = path.split("/")[1]

        async def attempt() -> httpx.Response:
            return await self._send(op, method, endpoint_id, path, body=body, retryable=resend)

        try:
            response = await self._policy.call_async(attempt, sleep=self._sleep)
        except GaveUp as exc:
            raise BackendError(f"{exc.problem} ({exc.tries} tries)") from None
        code = response.status_code
        if code == 404 and missing_ok:
            return None
        if code in (401, 403):
            raise ConfigError(f"RunPod rejected the API key ({code}): check RUNPOD_API_KEY")
        if code >= 400:
            raise BackendError(f"RunPod answered {code} to {what}: {_excerpt(response)}")
        try:
            return wire.loads(response.content)
        except ValueError:
            raise BackendError(f"RunPod sent a non-JSON answer to {what}") from None

    async def _send(
        self, op: str, method: str, endpoint_id: str, path: str, body: bytes | None = None,
        retryable: bool = True,
    ) -> httpx.Response:
        """One request within RunPod's limits for `op`. Raises TryAgain where sending it
        again is safe, _Lost where the request may have been acted on and must not be."""
        what = f"{method} {path}"
        try:
            async with self._limiter(op, endpoint_id):
                response = await self._http.request(
                    method, self.base_url + path, content=body,
                    headers={**self._auth, "Content-Type": "application/json"},
                )
        except httpx.TransportError as exc:
            if retryable or never_sent(exc):
                raise TryAgain(f"cannot reach {self.base_url} ({what}): {type(exc).__name__}") from None
            raise _Lost(type(exc).__name__) from None
        if response.status_code == 429:  # over RunPod's rate limit: refused, not run
            raise TryAgain(f"RunPod kept answering 429 (rate limited) to {what}", retry_after(response.headers))
        if response.status_code >= 500:
            if retryable:
                raise TryAgain(f"RunPod kept answering {response.status_code} to {what}", retry_after(response.headers))
            raise _Lost(f"HTTP {response.status_code}")
        return response

    def _limiter(self, op: str, endpoint_id: str):
        limit = self._limit_table.get(op)
        if limit is None:
            return _NO_LIMIT
        key = (op, endpoint_id)
        if key not in self._limiters:
            self._limiters[key] = Limiter(limit, self._clock, self._sleep)
        return self._limiters[key]


class _NoLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc) -> None:
        return None


_NO_LIMIT = _NoLimit()


def _retry_after(response: httpx.Response) -> float | None:
    """Kept for vidagent/deploy.py, which imports it; new code uses retry.retry_after."""
    return retry_after(response.headers)


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason_phrase
