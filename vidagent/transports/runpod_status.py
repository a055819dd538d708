"""Reading RunPod's answers: a job's final /status as a JobResult or one of our errors, a
FAILED job's `error` as one line and whether retrying could help, /health as a diagnosis."""

from __future__ import annotations

import json
from typing import Any

from ..errors import BackendError, JobFailed, JobTimeout
from . import JobResult

WORKER_INPUT_ERROR = "WorkerInputError"  # vidagent.workers' refusal of a bad input


def diagnose(health: dict[str, Any]) -> tuple[str, bool]:
    """(a few words on the endpoint's workers, whether they are running jobs) from /health.
    RunPod's /health counts workers as idle, initializing, ready, running, throttled and
    (REST v2's states) unhealthy; a key it leaves out counts as 0."""
    workers = health.get("workers") or {}
    jobs = health.get("jobs") or {}
    count = {k: int(workers.get(k) or 0) for k in ("idle", "initializing", "running", "throttled", "unhealthy")}
    queued = int(jobs.get("inQueue") or 0)
    if count["running"]:
        return f"{count['running']} worker(s) busy with other jobs, {queued} queued", True
    if count["initializing"]:
        return (f"{count['initializing']} worker(s) still initializing (image pull or model load): "
                "raise runpod_queue_timeout_s to wait out cold starts"), False
    if count["throttled"]:
        return (f"all {count['throttled']} worker(s) throttled: no GPU of the endpoint's types is free "
                "on their hosts; add GPU types to the endpoint or try later"), False
    if count["unhealthy"]:
        return f"{count['unhealthy']} worker(s) unhealthy (crashing at start): read the endpoint's logs", False
    if count["idle"]:
        return f"{count['idle']} idle worker(s) not taking jobs: read the endpoint's logs", False
    return ("no workers: none running or starting; check the endpoint's max workers, GPU types "
            "and the account's balance in the RunPod console"), False


def job_result(endpoint: str, job_id: str, status: dict[str, Any]) -> JobResult:
    state = status.get("status")
    if state == "COMPLETED":
        return JobResult(
            output=status.get("output") or {},
            execution_s=(status.get("executionTime") or 0) / 1000,
            delay_s=(status.get("delayTime") or 0) / 1000,
            billed=True,
            worker_id=status.get("workerId"),
        )
    if state == "FAILED":
        message, retryable = worker_failure(status.get("error"))
        raise JobFailed(f"{endpoint} job {job_id} failed: {message}", retryable=retryable)
    if state == "TIMED_OUT":  # RunPod: expired before a worker took it, or ran too long
        if status.get("workerId") is None and status.get("executionTime") is None:
            raise JobTimeout(f"{endpoint} job {job_id} expired in the queue before a worker took it (runpod_ttl_s)")
        raise JobTimeout(f"{endpoint} job {job_id} ran past runpod_execution_timeout_s")
    raise BackendError(f"{endpoint} job {job_id} was cancelled on the endpoint")


def worker_failure(error: Any) -> tuple[str, bool]:
    """A FAILED job's `error` as (one line, retryable). RunPod's SDK reports an exception the
    handler raised as a JSON string with its error_type and traceback: the worker broke (a
    crash, out of memory), so it may be retried, unless the exception is our workers'
    WorkerInputError. An `error` the handler returned itself is a refusal of the input."""
    if isinstance(error, str):
        try:
            details = json.loads(error)
        except ValueError:
            details = None
        if isinstance(details, dict) and "error_message" in details:
            kind = str(details.get("error_type", "")).removeprefix("<class '").removesuffix("'>")
            message = _one_line(str(details["error_message"]))
            retryable = kind.rsplit(".", 1)[-1] != WORKER_INPUT_ERROR
            return (f"{kind}: {message}" if kind else message), retryable
        return _one_line(error) or "unknown error", False
    if error:
        return _one_line(str(error)), False
    return "the worker reported no error message", True


def worker_error(error: Any) -> str:
    """A FAILED job's `error` in one line."""
    return worker_failure(error)[0]


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
