"""RunPod serverless endpoints over their REST API (`/run`, `/status`, `/cancel`).

Policy lives here, I/O in httpx: every request has a timeout; 429, 5xx and network errors
are retried with exponential backoff and full jitter, honouring `Retry-After`; a job the
endpoint reports FAILED is never retried (its input is bad); a status 404 means the job
or its result expired, so the job is submitted again. A job whose caller is cancelled
(Ctrl-C, SIGTERM, a failed sibling) is cancelled on RunPod too, so billing stops.

The API key goes into the Authorization header and nowhere else: no message, log line or
report of this module contains it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import httpx

from .. import wire
from ..config import Settings
from ..errors import BackendError, ConfigError, JobFailed, JobTimeout
from . import JobResult

MAX_RUN_BYTES = 10_000_000  # RunPod's /run body limit ("10 MB"; the stricter reading)
MAX_RESUBMITS = 3
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
# Status polling learns how long this endpoint's jobs take (submit to done, a moving
# average): the first poll comes when that much time has passed, later ones every eighth
# of it. Without history it polls at 50 ms, growing 1.3x. Measured: fixed 0.25 s growing
# to 3 s left the workers idle most of the time; fixed 50 ms growing to 1 s cost ~10 status
# calls a job; a first poll at 80% of the typical time ~2.2, at 100% ~1.7 (docs/benchmarks.md).
_POLL_MIN_S, _POLL_GROWTH, _POLL_MAX_S = 0.05, 1.3, 1.0
_LATENCY_WEIGHT = 0.2  # of the newest job in the moving average
_BACKOFF_BASE_S, _BACKOFF_MAX_S = 0.5, 20.0

Sleep = Callable[[float], Awaitable[None]]


class RunPodTransport:
    name = "runpod"
    max_payload_bytes = MAX_RUN_BYTES - 4096  # room for the envelope around the input

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ):
        if settings.runpod_api_key is None or not settings.runpod_api_key.get_secret_value():
            raise ConfigError(
                "RUNPOD_API_KEY is not set: export it or put RUNPOD_API_KEY=... in ./.env "
                "(create a key in the RunPod console under Settings > API Keys)"
            )
        self.settings = settings
        self.base_url = settings.runpod_base_url.rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=settings.runpod_request_timeout_s)
        self._auth = {"Authorization": f"Bearer {settings.runpod_api_key.get_secret_value()}"}
        self._sleep = sleep
        self._jitter = jitter
        self._latency: dict[str, float] = {}  # endpoint id -> typical seconds from submit to done
        self.resubmitted = 0
        self.status_calls = 0

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
        for _ in range(MAX_RESUBMITS + 1):
            job = await self._call("POST", f"/{endpoint_id}/run", body=body)
            job_id = job["id"]
            try:
                status = await self._wait(endpoint_id, job_id)
            except asyncio.CancelledError:
                await self._cancel(endpoint_id, job_id)
                raise
            if status is not None:
                return _job_result(endpoint, job_id, status)
            self.resubmitted += 1  # 404: the job or its result expired before we saw it
        raise BackendError(
            f"{endpoint} job expired {MAX_RESUBMITS + 1} times before its result was read "
            f"(status 404): check the endpoint has workers and raise runpod_ttl_s"
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _wait(self, endpoint_id: str, job_id: str) -> dict[str, Any] | None:
        started = time.monotonic()
        typical = self._latency.get(endpoint_id)
        if typical is None:
            first, step = _POLL_MIN_S, _POLL_MIN_S
        else:
            first = min(max(_POLL_MIN_S, typical), 10 * _POLL_MAX_S)
            step = min(max(_POLL_MIN_S, typical / 8), _POLL_MAX_S)
        await self._sleep(first)
        while True:
            self.status_calls += 1
            status = await self._call("GET", f"/{endpoint_id}/status/{job_id}", missing_ok=True)
            if status is None or status.get("status") in FINAL_STATES:
                if status is not None and status.get("status") == "COMPLETED":
                    self._learn(endpoint_id, time.monotonic() - started)
                return status
            await self._sleep(step)
            step = min(_POLL_MAX_S, step * _POLL_GROWTH)

    def _learn(self, endpoint_id: str, seconds: float) -> None:
        old = self._latency.get(endpoint_id)
        self._latency[endpoint_id] = seconds if old is None else old + _LATENCY_WEIGHT * (seconds - old)

    async def _cancel(self, endpoint_id: str, job_id: str) -> None:
        """Best effort, bounded: we are already on the way out."""
        try:
            await asyncio.wait_for(
                self._http.post(f"{self.base_url}/{endpoint_id}/cancel/{job_id}", headers=self._auth),
                timeout=5,
            )
        except (httpx.HTTPError, asyncio.TimeoutError):
            pass

    async def _call(
        self, method: str, path: str, body: bytes | None = None, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        what = f"{method} {path}"
        retries = self.settings.runpod_max_retries
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                response = await self._http.request(
                    method,
                    self.base_url + path,
                    content=body,
                    headers={**self._auth, "Content-Type": "application/json"},
                )
            except httpx.TransportError as exc:
                if last:
                    raise BackendError(
                        f"cannot reach {self.base_url} ({what}): {type(exc).__name__}"
                    ) from None
                await self._sleep(self._backoff(attempt))
                continue
            code = response.status_code
            if code == 429 or code >= 500:
                if last:
                    raise BackendError(f"RunPod kept answering {code} to {what}; giving up")
                await self._sleep(_retry_after(response) or self._backoff(attempt))
                continue
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
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt) * self._jitter()


def _job_result(endpoint: str, job_id: str, status: dict[str, Any]) -> JobResult:
    state = status.get("status")
    if state == "COMPLETED":
        return JobResult(
            output=status.get("output") or {},
            execution_s=(status.get("executionTime") or 0) / 1000,
            delay_s=(status.get("delayTime") or 0) / 1000,
        )
    if state == "FAILED":
        raise JobFailed(f"{endpoint} job {job_id} failed: {worker_error(status.get('error'))}")
    if state == "TIMED_OUT":
        raise JobTimeout(f"{endpoint} job {job_id} ran past runpod_execution_timeout_s")
    raise BackendError(f"{endpoint} job {job_id} was cancelled on the endpoint")


def worker_error(error: Any) -> str:
    """The SDK wraps handler exceptions as a JSON string with a traceback: keep one line."""
    if isinstance(error, str):
        try:
            details = json.loads(error)
        except ValueError:
            return " ".join(line.strip() for line in error.strip().splitlines()) or "unknown error"
        if isinstance(details, dict) and "error_message" in details:
            kind = str(details.get("error_type", "")).removeprefix("<class '").removesuffix("'>")
            return f"{kind}: {details['error_message']}" if kind else details["error_message"]
    return str(error) if error else "unknown error"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason_phrase
