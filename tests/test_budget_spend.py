"""What --max-cost counts: billed GPU time, one cold start and idle timeout per worker seen,
nothing for local or cached jobs; reports priced only where RunPod ran the work."""

from __future__ import annotations

import pytest

from vidagent.budget import Budget, BudgetExceeded
from vidagent.cost import load_pricing
from vidagent.config import Settings
from vidagent.report.model import EndpointUsage
from vidagent.transports import JobResult


@pytest.fixture(scope="module")
def pricing():
    return load_pricing(Settings())  # the shipped configs/prices.yaml and profile.yaml


def per_s(prices, endpoint: str) -> float:
    return prices.pool_of(endpoint).flex_usd_per_s


def job(seconds: float, worker: str | None = "w1", billed: bool = True, cached: bool = False) -> JobResult:
    return JobResult(output={}, execution_s=seconds, billed=billed, worker_id=worker, cached=cached)


def test_each_worker_is_charged_one_start_and_idle_timeout(pricing):
    prices, profile = pricing
    budget = Budget(1000.0, prices, profile)
    yolo = profile.of("yolo")
    budget.charge("yolo", job(2.0, "w1"))
    budget.charge("yolo", job(3.0, "w1"))  # the same warm worker: no second start
    budget.charge("yolo", job(1.0, "w2"))
    expected = (6.0 + 2 * (yolo.cold_start_s + yolo.idle_s)) * per_s(prices, "yolo")
    assert budget.spent == pytest.approx(expected, rel=1e-3) and budget.worker_starts == 2


def test_a_route_that_names_no_worker_counts_one_start(pricing):
    prices, profile = pricing
    budget = Budget(1000.0, prices, profile)
    for _ in range(3):
        budget.charge("vlm", job(1.0, worker=None))
    vlm = profile.of("vlm")
    assert budget.spent == pytest.approx((3.0 + vlm.cold_start_s + vlm.idle_s) * per_s(prices, "vlm"), rel=1e-3)


def test_local_and_cached_jobs_cost_nothing(pricing):
    prices, profile = pricing
    budget = Budget(0.000001, prices, profile)
    budget.charge("yolo", job(100.0, billed=False))
    budget.charge("yolo", job(0.0, cached=True))
    assert budget.spent == 0.0 and budget.worker_starts == 0


def test_always_on_workers_have_no_start_to_pay(pricing):
    prices, profile = pricing
    always_on = profile.model_copy(update={"yolo": profile.yolo.model_copy(update={"cold_starts_per_run": 0})})
    budget = Budget(1000.0, prices, always_on)
    budget.charge("yolo", job(2.0))
    assert budget.spent == pytest.approx(2.0 * per_s(prices, "yolo"), rel=1e-3)


def test_the_budget_stops_on_the_start_it_cannot_afford(pricing):
    prices, profile = pricing
    yolo = profile.of("yolo")
    start_usd = (yolo.cold_start_s + yolo.idle_s) * per_s(prices, "yolo")
    budget = Budget(start_usd * 1.5, prices, profile)
    budget.charge("yolo", job(0.0, "w1"))
    with pytest.raises(BudgetExceeded, match=r"reached .*2 worker start\(s\) with their idle time"):
        budget.charge("yolo", job(0.0, "w2"))


def test_reports_are_priced_only_where_runpod_ran_the_work(pricing):
    from vidagent.media.probe import MediaInfo
    from vidagent.report.model import Report

    prices, _ = pricing
    media = MediaInfo(path="v.mp4", file_name="v.mp4", size_bytes=1, duration_s=1.0, width=2, height=2,
                      coded_width=2, coded_height=2, has_audio=False)
    report = Report(vidagent_version="t", created_at="now", media=media, settings={},
                    usage={"yolo": EndpointUsage(execution_s=10.0), "whisper": EndpointUsage(execution_s=10.0),
                           "vlm": EndpointUsage(execution_s=10.0)})
    Budget(None, prices).price(report, {"yolo": "runpod", "whisper": "local", "vlm": "openai:localhost:8000"})
    assert report.usage["yolo"].usd == pytest.approx(10.0 * per_s(prices, "yolo"))
    assert report.usage["whisper"].usd is None and report.usage["vlm"].usd is None
