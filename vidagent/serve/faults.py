"""Injected failures of the client API, drawn from a seeded generator.

A faulted request is answered before it reaches its handler, so nothing happened on the
server (a 5xx here never hides an accepted job). The worker job API is never faulted:
the SDK's own retries are not what these drills test.
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


class FaultInjector:
    def __init__(self, settings: FaultSettings):
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self.injected: Counter[int] = Counter()

    @property
    def delay_s(self) -> float:
        return self.settings.delay_ms / 1000

    def draw(self) -> Fault | None:
        """One draw per client request: a 5xx, a 429, or None (answer normally)."""
        if not (self.settings.rate_5xx or self.settings.rate_429):
            return None
        roll = self._rng.random()
        if roll < self.settings.rate_5xx:
            fault = Fault(self._rng.choice(SERVER_ERRORS))
        elif roll < self.settings.rate_5xx + self.settings.rate_429:
            fault = Fault(429, self.settings.retry_after_s)
        else:
            return None
        self.injected[fault.status] += 1
        return fault
