"""`--max-cost`: refuse a run whose estimate is over budget, stop one whose spend gets there.

Spend counts what RunPod bills a flex worker for (docs.runpod.io/serverless/pricing: from
start to stop, "start time", "execution time" and "idle timeout duration"), at each
endpoint's flex price (`cost.dollars_for`):

- each finished billed job's executionTime: an upper bound where a worker runs several jobs
  at once, so a budget stops a run early rather than late;
- once per worker seen running this run's jobs (the status' workerId; once per endpoint
  where RunPod names none, as on the OpenAI route), one cold start and one idle timeout,
  as the time profile gives them; none on an endpoint whose profile says its workers are
  always on (cold_starts_per_run 0).

Local and cached jobs cost nothing, and reports price only the endpoints RunPod bills.
"""

from __future__ import annotations

from .config import Settings
from .errors import VidagentError
from .report.model import EndpointUsage
from .transports import JobResult


class BudgetExceeded(VidagentError):
    """The run would cost, or has cost, more than --max-cost."""


class Budget:
    def __init__(self, limit_usd: float | None, prices=None, profile=None):
        self.limit = limit_usd
        self.prices = prices
        self.profile = profile
        self.spent = 0.0
        self.worker_starts = 0
        self._workers: set[tuple[str, str | None]] = set()

    def usd(self, endpoint: str, usage: EndpointUsage) -> float | None:
        from .cost import dollars_for

        if self.prices is None:
            return None
        return dollars_for({endpoint: usage}, self.prices).get(endpoint)

    def price(self, report, backends: dict[str, str]) -> None:
        """Set `usage.usd` in a report for the endpoints RunPod bills, and only those."""
        for endpoint, usage in report.usage.items():
            usage.usd = self.usd(endpoint, usage) if backends.get(endpoint) == "runpod" else None

    def charge(self, endpoint: str, result: JobResult) -> None:
        if self.limit is None or result.cached or not result.billed:
            return
        self.spent += self.usd(endpoint, EndpointUsage(execution_s=result.execution_s)) or 0.0
        worker = (endpoint, result.worker_id)  # None: RunPod named no worker, count one
        if worker not in self._workers:
            self._workers.add(worker)
            self.spent += self._start_usd(endpoint)
        if self.spent >= self.limit:
            starts = f", {self.worker_starts} worker start(s) with their idle time" if self.worker_starts else ""
            raise BudgetExceeded(
                f"--max-cost ${self.limit:g} reached (${self.spent:.4f} measured: GPU time of the jobs"
                f"{starts}): stopped; finished reports are kept and a rerun resumes from the cache"
            )

    def _start_usd(self, endpoint: str) -> float:
        """One worker's cold start and idle timeout, as the profile has them."""
        if self.profile is None:
            return 0.0
        try:
            p = self.profile.of(endpoint)
        except AttributeError:
            return 0.0
        if p.cold_starts_per_run == 0:
            return 0.0  # always-on workers: no start to pay for
        self.worker_starts += 1
        return self.usd(endpoint, EndpointUsage(execution_s=p.cold_start_s + p.idle_s)) or 0.0

    def check_estimate(self, media: list, settings: Settings, profile) -> None:
        """Refuse to start when the typical estimate is over budget."""
        from .cost import estimate

        self.profile = self.profile or profile  # the profile that prices worker starts too
        if self.limit is None or not media:
            return
        result = estimate(media, settings, self.prices, profile)
        expected = result.configured.total.usd_flex
        if expected > self.limit:
            raise BudgetExceeded(
                f"estimated ${expected:.4f} (range ${result.configured_usd_flex_min:.4f}-"
                f"${result.configured_usd_flex_max:.4f}) is over --max-cost ${self.limit:g}: "
                "nothing was started (see `vidagent cost-estimate`)"
            )
