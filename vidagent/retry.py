"""One retry policy for every HTTP call to RunPod: the job API (transports/runpod.py) and
the management API (deploy), on tenacity.

Retries are deliberately narrow. A caller raises `TryAgain` inside the retried function
only for a failure after which sending the same request again cannot do its work twice:

- the connection was never made, so nothing was sent (`never_sent`);
- RunPod answered 429: it refused the request unread;
- the request is idempotent (a GET, a cancel, a PATCH) and failed in transit or with a 5xx.

A POST that creates something (a job, a template, an endpoint) whose answer was lost is
not retried here: the caller must find out whether it happened before it sends it again.
Waits are exponential with full jitter, or what `Retry-After` asks for (capped).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Awaitable, Callable, Mapping, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

T = TypeVar("T")


class TryAgain(Exception):
    """Raised by a retried function: this attempt failed in a way that may be retried."""

    def __init__(self, problem: str, retry_after_s: float | None = None):
        super().__init__(problem)
        self.problem = problem
        self.retry_after_s = retry_after_s


class GaveUp(Exception):
    """Every attempt failed with TryAgain; `problem` is the last one's."""

    def __init__(self, problem: str, tries: int):
        super().__init__(f"{problem}; giving up after {tries} tries")
        self.problem = problem
        self.tries = tries


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 6  # after the first try
    base_s: float = 0.5
    max_s: float = 20.0
    max_retry_after_s: float = 60.0  # a server asking for longer is not waited on for longer
    jitter: Callable[[], float] = random.random

    def wait_s(self, retry: int, retry_after_s: float | None) -> float:
        """Before retry number `retry` (0 for the first)."""
        if retry_after_s is not None:
            return min(max(0.0, retry_after_s), self.max_retry_after_s)
        return min(self.max_s, self.base_s * 2**retry) * self.jitter()

    def call(self, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
        try:
            return Retrying(sleep=sleep, **self._options())(fn)
        except TryAgain as exc:
            raise GaveUp(exc.problem, self.retries + 1) from None

    async def call_async(
        self, fn: Callable[[], Awaitable[T]], sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> T:
        try:
            return await AsyncRetrying(sleep=sleep, **self._options())(fn)
        except TryAgain as exc:
            raise GaveUp(exc.problem, self.retries + 1) from None

    def _options(self) -> dict:
        return dict(
            stop=stop_after_attempt(self.retries + 1),
            retry=retry_if_exception_type(TryAgain),
            wait=self._wait,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after_s if isinstance(exc, TryAgain) else None
        return self.wait_s(state.attempt_number - 1, retry_after)


def never_sent(exc: httpx.TransportError) -> bool:
    """The request cannot have reached the server: no connection was made, or none was free."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), or None."""
    value = headers.get("Retry-After")
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
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
