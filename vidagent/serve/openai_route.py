"""The OpenAI-compatible route RunPod serves for its vLLM worker:
`/v2/{endpoint}/openai/v1/chat/completions|models`.

Each request becomes a job `{"openai_route", "openai_input"}` on the endpoint's queue, as
RunPod's platform makes it, and is answered with the job's output; errors come in OpenAI's
shape with the status the `openai` SDK (and vLLM) would give. Key and faults as for the
client API.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import wire
from .client_api import RUNSYNC_LIMIT
from .hub import HUB, ApiError, disconnected, endpoint_of, json_response, read_json
from .jobs import COMPLETED, FAILED, TIMED_OUT, Job, Policy

log = logging.getLogger("vidagent.serve")

CLIENT_CHECK_S = 0.5  # how often an OpenAI request's wait looks for a client that left


def routes(v2: str) -> list[tuple[str, tuple[str, ...], str, Any]]:
    return [
        ("openai.chat", ("POST",), f"{v2}/openai/v1/chat/completions", openai_chat),
        ("openai.models", ("GET",), f"{v2}/openai/v1/models", openai_models),
    ]


OPENAI_CHAT_ROUTE = "/v1/chat/completions"
OPENAI_MODELS_ROUTE = "/v1/models"


async def openai_chat(request: web.Request) -> web.Response:
    endpoint = endpoint_of(request)
    body, _ = await read_json(request, RUNSYNC_LIMIT, "the OpenAI route")
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object (a chat completions request)")
    if body.get("stream"):
        raise ApiError(400, 'streaming is not supported by vidagent serve; send "stream": false')
    return await _openai_job(request, endpoint, OPENAI_CHAT_ROUTE, body)


async def openai_models(request: web.Request) -> web.Response:
    return await _openai_job(request, endpoint_of(request), OPENAI_MODELS_ROUTE, {})


async def _openai_job(request: web.Request, endpoint: str, route: str, body: dict[str, Any]) -> web.Response:
    """Queue the request as RunPod's platform does, wait, answer with the job's output."""
    hub = request.app[HUB]
    job = hub.store.submit(endpoint, {"openai_route": route, "openai_input": body}, Policy(), sync=True, source="openai")
    log.debug("job %s queued on %s for %s", job.id, endpoint, route)
    if not await _await_job(request, job, hub.config.openai_wait_s):
        # Nobody will collect the result: stop the work. The openai SDK retries a timeout
        # or a 504 with a new request, and two generations of one caption would share the GPU.
        log.info("job %s on %s cancelled: %s", job.id, endpoint, _why_unfinished(request))
        hub.store.cancel(job.id)
        if hub.closing:
            raise ApiError(503, "vidagent serve is stopping", code="server_stopping")
        raise ApiError(504, f"no result within {hub.config.openai_wait_s:g} s (openai_wait_s); job {job.id} "
                            "was cancelled", code="timeout")
    return openai_answer(job)


def _why_unfinished(request: web.Request) -> str:
    hub = request.app[HUB]
    if hub.closing:
        return "the server is stopping"
    if disconnected(request):
        return "its client left"
    return f"no result within openai_wait_s ({hub.config.openai_wait_s:g} s)"


async def _await_job(request: web.Request, job: Job, wait_s: float) -> bool:
    """True once the job is final or gone; False when the wait ran out, the client left or
    the server is stopping. aiohttp does not cancel a handler whose client left, hence
    the regular look at the socket."""
    hub = request.app[HUB]
    settled = lambda: job.final or hub.store.get(job.id) is None  # noqa: E731
    deadline = time.monotonic() + wait_s
    while not settled():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or hub.closing or disconnected(request):
            return False
        await hub.wait_for(settled, min(remaining, CLIENT_CHECK_S))
    return True


def openai_answer(job: Job) -> web.Response:
    if job.status == COMPLETED:
        if job.result.get("output") is None:
            raise ApiError(500, f"job {job.id}: the worker returned no output", code="empty_output")
        return json_response(job.result["output"])
    if job.status == FAILED:
        raise _openai_failure(job.result.get("error"))
    if job.status == TIMED_OUT:
        raise ApiError(504, f"job {job.id} ran longer than its executionTimeout "
                            f"({job.policy.execution_timeout_s:g} s) and was stopped", code="timeout")
    # Cancelled through /cancel, or purged or expired while queued: not worth a retry.
    raise ApiError(410, f"job {job.id} was cancelled or removed before it finished", code="job_cancelled")


@dataclass(frozen=True)
class WorkerFailure:
    message: str  # one line
    crashed: bool  # the handler raised (the SDK's JSON report), rather than refusing the input


def worker_failure(error: Any) -> WorkerFailure:
    """A FAILED job's `error` in one line. The SDK reports a handler exception as a JSON
    string with its type and traceback; a handler that refuses its input returns a message.
    (The same reading as vidagent.transports.runpod_status.worker_error, which serve may not import,
    except that a multi-line message is joined, not cut to its last line.)"""
    if isinstance(error, str):
        try:
            details = wire.loads(error)
        except ValueError:
            details = None
        if isinstance(details, dict) and "error_message" in details:
            kind = str(details.get("error_type", "")).removeprefix("<class '").removesuffix("'>")
            message = _one_line(str(details["error_message"]))
            return WorkerFailure(f"{kind}: {message}" if kind else message, crashed=True)
    if isinstance(error, dict) and "message" in error:  # an OpenAI-style error object
        error = error["message"]
    return WorkerFailure(_one_line(str(error)) if error else "unknown error", crashed=False)


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _openai_failure(error: Any) -> ApiError:
    """The status OpenAI (and vLLM) would give: the openai SDK raises by status, and
    vidagent's OpenAI transport tells a wrong model name (404) from a bad request (400)."""
    failure = worker_failure(error)
    if failure.crashed:
        return ApiError(500, f"the worker's handler failed: {failure.message}", code="worker_error")
    lower = failure.message.lower()
    if "context length" in lower:
        return ApiError(400, failure.message, code="context_length_exceeded")
    if _says_model_missing(lower):
        return ApiError(404, failure.message, code="model_not_found")
    return ApiError(400, failure.message)


def _says_model_missing(lower: str) -> bool:
    # vLLM: "The model `x` does not exist."; vidagent's vlm worker: "VLM 'x' cannot be
    # loaded: unknown offline VLM …"; others: "model … not found".
    names_a_model = "model" in lower or "vlm" in lower
    return names_a_model and any(words in lower for words in ("not found", "does not exist", "unknown offline"))
