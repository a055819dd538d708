"""The one retry policy (vidagent/retry.py) that the RunPod transport and deploy share."""

import asyncio
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from vidagent.retry import GaveUp, RetryPolicy, TryAgain, never_sent, retry_after


def flaky(failures: list[Exception]):
    calls = []

    def fn():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    return fn, calls


def test_retries_only_try_again_and_waits_with_backoff_or_retry_after():
    waits = []
    fn, calls = flaky([TryAgain("429"), TryAgain("503", retry_after_s=7), TryAgain("reset")])
    policy = RetryPolicy(retries=5, base_s=0.5, max_s=20, jitter=lambda: 1.0)
    assert policy.call(fn, sleep=waits.append) == "ok"
    assert len(calls) == 4
    assert waits == [0.5, 7, 2.0]  # 0.5 * 2**0, then Retry-After, then 0.5 * 2**2


def test_other_errors_are_not_retried():
    fn, calls = flaky([ValueError("bad input")])
    with pytest.raises(ValueError):
        RetryPolicy(retries=5).call(fn, sleep=lambda s: None)
    assert len(calls) == 1


def test_gives_up_after_the_retries_with_the_last_problem():
    fn, calls = flaky([TryAgain(f"try {i}") for i in range(10)])
    with pytest.raises(GaveUp) as caught:
        RetryPolicy(retries=2).call(fn, sleep=lambda s: None)
    assert len(calls) == 3
    assert str(caught.value) == "try 2; giving up after 3 tries"


def test_async_calls_use_the_same_policy():
    waits = []

    async def sleep(s):
        waits.append(s)

    attempts = []

    async def fn():
        attempts.append(1)
        if len(attempts) < 3:
            raise TryAgain("busy", retry_after_s=1000)
        return 42

    policy = RetryPolicy(retries=3, max_retry_after_s=60)
    assert asyncio.run(policy.call_async(fn, sleep=sleep)) == 42
    assert waits == [60, 60]  # a huge Retry-After is capped


def test_full_jitter_stays_under_the_cap():
    policy = RetryPolicy(base_s=0.5, max_s=20, jitter=lambda: 0.999)
    assert 19 < policy.wait_s(10, None) < 20


def test_retry_after_header_forms():
    assert retry_after({"Retry-After": "3"}) == 3.0
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 < retry_after({"Retry-After": format_datetime(later, usegmt=True)}) <= 30
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None


def test_never_sent_tells_a_refused_connection_from_a_lost_answer():
    request = httpx.Request("POST", "https://api.runpod.ai/v2/x/run")
    assert never_sent(httpx.ConnectError("refused", request=request))
    assert never_sent(httpx.ConnectTimeout("slow", request=request))
    assert not never_sent(httpx.ReadTimeout("lost", request=request))
    assert not never_sent(httpx.RemoteProtocolError("closed", request=request))
