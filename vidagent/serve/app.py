"""The HTTP side of `vidagent serve`: one aiohttp app, its routes by module, one gate.

- Client API (client_api.py), `/v2/{endpoint}/run|runsync|status|stream|cancel|retry|health
  |purge-queue`: what api.runpod.ai serves. Needs the API key when one is set; faults are
  injected here.
- OpenAI-compatible route (openai_route.py), `/v2/{endpoint}/openai/v1/chat/completions
  |models`: what RunPod serves for its vLLM worker. Key and faults as for the client API.
- Worker job API (worker_api.py), `/v2/{endpoint}/job-take|job-take-batch|job-stop|job-done
  |job-stream|ping/{worker}`: what the SDK's production loop calls, with a per-server token.
- Admin (admin.py), `/_vidagent/stats` and `/_vidagent/workers`: ours, for tests and drills.
- REST API (rest.py): the part of RunPod's management API that `vidagent deploy` uses;
  endpoints created there run serve's `images`. Key and faults as for the client API.

The shared state is the Hub (hub.py).
"""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web

from . import admin, client_api, openai_route, worker_api
from .hub import HUB, ApiError, Hub, json_response
from .rest import RestApi

__all__ = ["Hub", "build_app"]

# The routes whose request creates a (billed) job: a 5xx there may hide an accepted job.
JOB_CREATING_ROUTES = frozenset({"client.run", "client.runsync", "openai.chat"})


def build_app(hub: Hub) -> web.Application:
    app = web.Application(middlewares=[_gate], client_max_size=64 * 1024 * 1024)
    app[HUB] = hub
    v2 = "/v2/{endpoint}"
    routes = [*client_api.routes(v2), *openai_route.routes(v2), *worker_api.routes(v2), *admin.routes()]
    for name, methods, path, handler in routes:
        resource = app.router.add_resource(path, name=name)
        for method in methods:
            resource.add_route(method, handler)
    RestApi(hub).add_routes(app)
    return app


# -- middleware: faults, auth ---------------------------------------------------------


@web.middleware
async def _gate(request: web.Request, handler):
    hub = request.app[HUB]
    kind = (getattr(request.match_info.route, "name", None) or "").split(".")[0]
    # The OpenAI and REST routes are client routes too: their clients retry what faults inject.
    fault = None
    if kind in ("client", "openai", "rest"):
        if hub.faults.delay_s:
            await asyncio.sleep(hub.faults.delay_s)
        fault = hub.faults.draw(creates_job=request.match_info.route.name in JOB_CREATING_ROUTES)
        if fault is not None and not fault.lost:
            headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else None
            return _error(kind, fault.status, f"injected fault: HTTP {fault.status}", headers=headers)
    if kind in ("client", "openai", "rest", "admin") and hub.api_key and not _has_key(request, hub.api_key):
        return _error(kind, 401, "unauthorized: send the API key as 'Authorization: Bearer KEY'", code="invalid_api_key")
    if kind == "worker" and not hmac.compare_digest(request.query.get("token", "").encode(), hub.worker_token.encode()):
        return json_response({"error": "unauthorized worker"}, status=401)
    try:
        response = await handler(request)
    except ApiError as exc:
        return _error(kind, exc.status, exc.message, code=exc.code)
    if fault is not None and fault.lost:  # handled, job and all; the answer goes missing
        return _error(kind, fault.status, "injected fault: the answer was lost (HTTP 502)")
    return response


# OpenAI's error types by status; its SDK picks the exception class by status alone.
_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                       410: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
                       504: "timeout_error"}


def _error(kind: str, status: int, message: str, code: str | None = None, headers=None) -> web.Response:
    """RunPod's `{"error": message}`, or OpenAI's `{"error": {message, type, param, code}}`."""
    if kind != "openai":
        return json_response({"error": message}, status=status, headers=headers)
    kind_of_error = _OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind_of_error, "param": None, "code": code}}
    return json_response(body, status=status, headers=headers)


def _has_key(request: web.Request, key: str) -> bool:
    given = request.headers.get("Authorization", "").strip()
    if given[:7].lower() == "bearer ":
        given = given[7:].strip()
    return hmac.compare_digest(given.encode(), key.encode())
