"""`--max-cost`: refuse a run whose estimate is over budget, stop one whose spend gets there.

Spend is measured from each finished job's executionTime at its endpoint's flex price
(`cost.dollars_for`): an upper bound where a worker runs several jobs at once, so a
budget stops a run early rather than late. Cached jobs cost nothing.
"""

from __future__ import annotations

from pathlib import Path

from .config import Settings
from .errors import VidagentError
from .report.model import EndpointUsage
from .transports import JobResult

_DATA_DIRS = (Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent / "configs")


class BudgetExceeded(VidagentError):
    """The run would cost, or has cost, more than --max-cost."""


def load_pricing(settings: Settings):
    """The price table and time profile: the settings' files or the shipped ones."""
    from .cli.cost import load_prices, load_profile

    def find(name: str) -> Path:
        return next((d / name for d in _DATA_DIRS if (d / name).exists()), _DATA_DIRS[-1] / name)

    return (load_prices(settings.prices_file or find("prices.yaml")),
            load_profile(settings.profile_file or find("profile.yaml")))


class Budget:
    def __init__(self, limit_usd: float | None, prices=None):
        self.limit = limit_usd
        self.prices = prices
        self.spent = 0.0

    def usd(self, endpoint: str, usage: EndpointUsage) -> float | None:
        from .cost import dollars_for

        if self.prices is None:
            return None
        return dollars_for({endpoint: usage}, self.prices).get(endpoint)

    def charge(self, endpoint: str, result: JobResult) -> None:
        if self.limit is None or result.cached:
            return
        self.spent += self.usd(endpoint, EndpointUsage(execution_s=result.execution_s)) or 0.0
        if self.spent >= self.limit:
            raise BudgetExceeded(
                f"--max-cost ${self.limit:g} reached (${self.spent:.4f} of GPU time measured): "
                "stopped; finished reports are kept and a rerun resumes from the cache"
            )

    def check_estimate(self, media: list, settings: Settings, profile) -> None:
        """Refuse to start when the typical estimate is over budget."""
        from .cost import estimate

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
