"""Injected failures of the client API, drawn from a seeded generator.

A 5xx or 429 is answered before the request reaches its handler, so nothing happened on
the server. A 5xx is not injected that way on the routes that create a job (/run,
/runsync, chat completions): there a client cannot tell it from an accepted job whose answer
was lost, which is what a *lost* fault is: the job is accepted and runs, and its answer is
replaced by a 502. The worker job API is never faulted: the SDK's own retries are not what
these drills test.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from .config import FaultSettings

SERVER_ERRORS = (500, 502, 503)


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after_s: int | None = None
    lost: bool = False  # the request is handled; only its answer is replaced


class FaultInjector:
    def __init__(self, settings: FaultSettings):
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self.injected: Counter[int] = Counter()

    @property
    def delay_s(self) -> float:
        return self.settings.delay_ms / 1000

    def draw(self, creates_job: bool = False) -> Fault | None:
        """One draw per client request: a 5xx, a 429, a lost answer, or None (answer
        normally). Every request takes the same draws whatever its route, so a seed gives
        the same sequence of faults for the same sequence of requests."""
        settings = self.settings
        if not (settings.rate_5xx or settings.rate_429 or settings.rate_lost):
            return None
        roll = self._rng.random()
        if roll < settings.rate_5xx:
            fault = Fault(self._rng.choice(SERVER_ERRORS))
            if creates_job:
                return None
        elif roll < settings.rate_5xx + settings.rate_429:
            fault = Fault(429, settings.retry_after_s)
        elif roll < settings.rate_5xx + settings.rate_429 + settings.rate_lost and creates_job:
            fault = Fault(502, lost=True)
        else:
            return None
        self.injected[fault.status] += 1
        return fault
