"""RunPod's REST API v2 for templates and serverless endpoints (https://api.runpod.io/v2),
the part `vidagent deploy` uses, in memory, on serve's port beside the serverless API.

- `GET`/`POST /v2/templates`, `GET`/`PATCH /v2/templates/{id}`, `GET`/`POST /v2/serverless`,
  `GET`/`PATCH /v2/serverless/{id}`. Lists are wrapped (`{"templates": [...]}`,
  `{"endpoints": [...]}`); creates answer 201. Bodies are checked as the OpenAPI document
  describes them (rest_schema.py): a wrong type, a missing field or an unknown one, by name,
  is a 422; a broken rule (gpu and cpu both or neither, an unknown pool, a set of CUDA
  versions beside a floor, workers over the account quota, …) a 400; an unknown id a 404.
  Every error is an RFC 9457 problem (`application/problem+json`: title, status, detail,
  errors), the API key and injected faults included: these routes answer them themselves.
- v2's semantics: a template is a snapshot that an endpoint copies at creation (body fields
  win, env merged per key) and is not linked to; PATCH changes only the fields it names
  (a `gpu.pools` replaces the selection and its exclusions; workers merge per key).
- An endpoint whose image is one of serve's `images` (compared without the tag) gets
  worker processes running the mapped handler, with its env under the mapping's own, and
  is served at `/v2/{id}/…` like a configured endpoint: deploy, then analyze, works on
  this machine. A PATCH that changes what runs rolls its workers.

Not emulated: DELETE (405), workers' and releases' listings, load-balancing endpoints'
workers (they are kept, never run), autoscaling, as elsewhere in serve.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import string
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from aiohttp import web

from ..errors import BackendError
from .config import EndpointSpec
from .rest_schema import (
    CONTAINER_FIELDS, CREATE_ENDPOINT, CREATE_TEMPLATE, GPU_POOLS, UPDATE_ENDPOINT, UPDATE_TEMPLATE, problems,
)

log = logging.getLogger("vidagent.serve")

TEMPLATE_DEFAULTS: dict[str, Any] = {
    "args": "", "disk": 20, "mounts": {}, "ports": [], "env": {}, "registry": None, "serverless": False,
    "public": False, "category": "NVIDIA", "startSsh": True, "startJupyter": True, "allowedCudaVersions": [],
}
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "args": "", "disk": 20, "ports": [], "env": {}, "registry": None, "dataCenterIds": [], "networkVolumes": [],
    "timeout": 300_000, "flashboot": "OFF",
}
WORKERS_DEFAULTS = {"min": 0, "max": 3, "idleTimeout": 10}
REQUEST_URLS = {"run": "run", "runSync": "runsync", "status": "status/{job_id}", "stream": "stream/{job_id}",
                "cancel": "cancel/{job_id}", "retry": "retry/{job_id}", "purgeQueue": "purge-queue", "health": "health"}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}
_ID_ALPHABET = string.ascii_lowercase + string.digits

Handler = Callable[[web.Request], Awaitable[tuple[int, Any]]]


class Problem(Exception):
    """An RFC 9457 answer."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def problem_response(status: int, detail: str, errors: list[str] | None = None, headers=None) -> web.Response:
    body: dict[str, Any] = {"title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status, headers=headers, content_type="application/problem+json")


def image_repository(image: str) -> str:
    """`host:5000/team/app:tag` and `…@sha256:…` → `host:5000/team/app`: what `images` keys on."""
    name = image.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


class RestApi:
    """Templates and endpoints of one serve run, and the workers of the endpoints it made."""

    def __init__(self, hub: Any):
        self.hub = hub  # app.Hub: its config (images, quota), job store, supervisor, key, faults
        self.templates: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}

    def add_routes(self, app: web.Application) -> None:
        # Named `management.*`, not `client.*`: app.py's gate leaves key and faults to these
        # routes, which answer them as problems. (`/v2/{endpoint}/…` routes need two
        # segments after /v2 and a fixed word; these ids are never such a word.)
        routes = [
            ("templates", "/v2/templates", {"GET": self.list_templates, "POST": self.create_template}),
            ("template", "/v2/templates/{id}", {"GET": self.get_template, "PATCH": self.update_template}),
            ("endpoints", "/v2/serverless", {"GET": self.list_endpoints, "POST": self.create_endpoint}),
            ("endpoint", "/v2/serverless/{id}", {"GET": self.get_endpoint, "PATCH": self.update_endpoint}),
        ]
        for name, path, handlers in routes:
            resource = app.router.add_resource(path, name=f"management.{name}")
            for method, handler in handlers.items():
                resource.add_route(method, self._answering(handler))
            resource.add_route("*", self._answering(_not_allowed(sorted(handlers))))

    # -- templates ----------------------------------------------------------------------

    async def list_templates(self, request: web.Request) -> tuple[int, Any]:
        return 200, {"templates": list(self.templates.values())}

    async def get_template(self, request: web.Request) -> tuple[int, Any]:
        return 200, self._template(request.match_info["id"])

    async def create_template(self, request: web.Request) -> tuple[int, Any]:
        body = _valid(await _json(request), CREATE_TEMPLATE)
        self._check_template_name(body["name"])
        template = {"id": self._new_id(10), **TEMPLATE_DEFAULTS, **body}
        self.templates[template["id"]] = template
        log.info("template %s (%s) created: %s", template["id"], template["name"], template["image"])
        return 201, template

    async def update_template(self, request: web.Request) -> tuple[int, Any]:
        template = self._template(request.match_info["id"])
        body = _valid(await _json(request), UPDATE_TEMPLATE)
        if body.get("name", template["name"]) != template["name"]:
            self._check_template_name(body["name"])
        if not body.get("mounts"):  # omitted or {}: the mount is left as it is
            body.pop("mounts", None)
        template.update(body)  # endpoints made from it keep what they copied
        log.info("template %s (%s) updated: %s", template["id"], template["name"], ", ".join(body) or "nothing")
        return 200, template

    # -- serverless endpoints ---------------------------------------------------------------

    async def list_endpoints(self, request: web.Request) -> tuple[int, Any]:
        return 200, {"endpoints": [self._view(e, request) for e in self.endpoints.values()]}

    async def get_endpoint(self, request: web.Request) -> tuple[int, Any]:
        return 200, self._view(self._endpoint(request.match_info["id"]), request)

    async def create_endpoint(self, request: web.Request) -> tuple[int, Any]:
        body = _valid(await _json(request), CREATE_ENDPOINT)
        if "templateId" not in body and "image" not in body:
            raise Problem(422, "Request validation failed.", ["$: missing property 'image'"])
        if body["type"] == "LOAD_BALANCER" and body["scaling"]["type"] != "REQUEST_COUNT":
            raise Problem(422, "Request validation failed.",
                          ["$.scaling.type: a LOAD_BALANCER endpoint scales on 'REQUEST_COUNT'"])
        if ("gpu" in body) == ("cpu" in body):
            raise Problem(400, "specify exactly one of gpu or cpu")
        endpoint = {**ENDPOINT_DEFAULTS}
        if "templateId" in body:  # copied now; later template edits do not reach the endpoint
            template = self._serverless_template(body["templateId"])
            endpoint.update({key: template[key] for key in CONTAINER_FIELDS})
            body["env"] = {**template["env"], **body.get("env", {})}
            gpu = body.get("gpu")
            if gpu is not None and "allowedCudaVersions" not in gpu and "minCudaVersion" not in gpu:
                gpu["allowedCudaVersions"] = list(template["allowedCudaVersions"])
        endpoint.update({key: value for key, value in body.items() if key not in ("templateId", "gpu", "workers")})
        endpoint["workers"] = {**WORKERS_DEFAULTS, **body.get("workers", {})}
        if "gpu" in body:
            endpoint["gpu"] = {"pools": body["gpu"]["pools"], "count": body["gpu"].get("count", 1),
                               "excludedTypes": body["gpu"].get("excludedTypes", []),
                               "allowedCudaVersions": body["gpu"].get("allowedCudaVersions", []),
                               "minCudaVersion": body["gpu"].get("minCudaVersion")}
        else:
            endpoint["gpu"] = None
        endpoint.update(id=self._free_endpoint_id(), createdAt=_now())
        self._check_endpoint(endpoint)
        self.endpoints[endpoint["id"]] = endpoint
        log.info("endpoint %s (%s) created: %s", endpoint["id"], endpoint["name"], endpoint["image"])
        await self._run_workers(endpoint)
        return 201, self._view(endpoint, request)

    async def update_endpoint(self, request: web.Request) -> tuple[int, Any]:
        endpoint = self._endpoint(request.match_info["id"])
        body = _valid(await _json(request), UPDATE_ENDPOINT)
        if "gpu" in body and "cpu" in body:
            raise Problem(400, "specify at most one of gpu or cpu")
        if ("gpu" in body and endpoint["gpu"] is None) or ("cpu" in body and endpoint["gpu"] is not None):
            raise Problem(400, "an endpoint's compute family (gpu or cpu) cannot be changed")
        updated = {**endpoint, "workers": dict(endpoint["workers"])}
        if body.get("templateId"):  # its container settings as if sent here; env replaced by the merge
            template = self._serverless_template(body["templateId"])
            updated.update({key: template[key] for key in CONTAINER_FIELDS})
            body["env"] = {**template["env"], **body.get("env", {})}
        for key, value in body.items():
            if key == "workers":
                updated["workers"].update(value)
            elif key == "gpu":
                updated["gpu"] = _patched_gpu(endpoint["gpu"], value)
            elif key != "templateId":
                updated[key] = value
        self._check_endpoint(updated)
        endpoint.update(updated)
        log.info("endpoint %s (%s) updated: %s", endpoint["id"], endpoint["name"], ", ".join(body) or "nothing")
        await self._run_workers(endpoint)
        return 200, self._view(endpoint, request)

    # -- rules ----------------------------------------------------------------------------

    def _template(self, template_id: str) -> dict[str, Any]:
        template = self.templates.get(template_id)
        if template is None:
            raise Problem(404, f"template {template_id!r} not found")
        return template

    def _serverless_template(self, template_id: str) -> dict[str, Any]:
        template = self._template(template_id)
        if not template["serverless"]:
            raise Problem(422, f"template {template_id!r} is not a serverless template")
        return template

    def _endpoint(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise Problem(404, f"serverless endpoint {endpoint_id!r} not found")
        return endpoint

    def _check_template_name(self, name: str) -> None:
        if any(t["name"] == name for t in self.templates.values()):
            raise Problem(400, f"template name {name!r} is already taken: template names must be unique")

    def _check_endpoint(self, endpoint: dict[str, Any]) -> None:
        gpu = endpoint["gpu"]
        if gpu is not None:
            _check_gpu(gpu)
        for flavor in endpoint.get("cpu") or ():
            if flavor["vcpuCount"] & (flavor["vcpuCount"] - 1):
                raise Problem(400, f"cpu: vcpuCount {flavor['vcpuCount']} is not a power of two")
        workers, scaling = endpoint["workers"], endpoint["scaling"]
        if workers["min"] > workers["max"]:
            raise Problem(400, f"workers.min ({workers['min']}) must not exceed workers.max ({workers['max']})")
        if scaling["type"] == "REQUEST_COUNT" and endpoint["type"] == "QUEUE" and "idleTimeout" in workers:
            raise Problem(400, "workers.idleTimeout does not apply to a queue endpoint scaling on REQUEST_COUNT")
        quota = self.hub.config.worker_quota
        others = sum(e["workers"]["max"] for e in self.endpoints.values() if e["id"] != endpoint.get("id"))
        if others + workers["max"] > quota:
            raise Problem(400, f"workers.max {workers['max']} would exceed your account's serverless worker quota "
                               f"of {quota} ({others} already allocated to other endpoints)")

    def _new_id(self, length: int) -> str:
        return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))

    def _free_endpoint_id(self) -> str:
        while True:  # never one that serve already runs
            candidate = self._new_id(14)
            if not self.hub.store.has_endpoint(candidate):
                return candidate

    def _view(self, endpoint: dict[str, Any], request: web.Request) -> dict[str, Any]:
        view = {key: value for key, value in endpoint.items() if key != "gpu"}
        base = f"{request.url.origin()}/v2/{endpoint['id']}"
        view["requestUrls"] = {key: f"{base}/{path}" for key, path in REQUEST_URLS.items()}
        gpu = endpoint["gpu"]
        view["gpu"] = None if gpu is None else {k: v for k, v in gpu.items() if k != "excludedTypes" or v}
        if endpoint["scaling"]["type"] == "REQUEST_COUNT" and endpoint["type"] == "QUEUE":
            view["workers"] = {k: v for k, v in endpoint["workers"].items() if k != "idleTimeout"}
        return view

    # -- workers ----------------------------------------------------------------------------

    async def _run_workers(self, endpoint: dict[str, Any]) -> None:
        """Start, roll or stop the endpoint's workers to match its image."""
        spec = self._worker_spec(endpoint)
        supervisor = self.hub.supervisor
        if supervisor is None or self.hub.config.endpoints.get(endpoint["id"]) == spec:
            return
        self.hub.store.add_endpoint(endpoint["id"])
        try:
            await supervisor.configure(endpoint["id"], spec)
        except BackendError as exc:  # the handler could not even be started: say so, keep the API up
            log.error("%s", exc)
        self.hub.changes.fire()  # long polls of retired workers answer now

    def _worker_spec(self, endpoint: dict[str, Any]) -> EndpointSpec | None:
        if endpoint["type"] != "QUEUE":
            log.warning("endpoint %s is a %s endpoint: serve keeps it but runs no workers for it",
                        endpoint["id"], endpoint["type"])
            return None
        image = image_repository(endpoint["image"])
        mapped = next((s for name, s in self.hub.config.images.items() if image_repository(name) == image), None)
        if mapped is None:
            log.warning("endpoint %s runs image %s, which serve has no handler for (pass --image %s=HANDLER "
                        "to run it here)", endpoint["id"], endpoint["image"], image)
            return None
        workers = min(mapped.workers, endpoint["workers"]["max"])
        if workers == 0:
            return None
        env = {**endpoint["env"], **mapped.env}
        return EndpointSpec(handler=mapped.handler, workers=workers, env=env, python=mapped.python)

    # -- the HTTP side ----------------------------------------------------------------------

    def _answering(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Faults, then the key, then the handler: JSON in, JSON out, problems as RFC 9457."""
        hub = self.hub

        async def route(request: web.Request) -> web.Response:
            if hub.faults.delay_s:
                await asyncio.sleep(hub.faults.delay_s)
            fault = hub.faults.draw()  # answered before the handler: nothing happened
            if fault is not None:
                headers = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else None
                return problem_response(fault.status, f"injected fault: HTTP {fault.status}", headers=headers)
            if hub.api_key and not _has_key(request, hub.api_key):
                return problem_response(401, "missing or invalid bearer token: send 'Authorization: Bearer KEY'")
            try:
                status, body = await handler(request)
            except Problem as exc:
                return problem_response(exc.status, exc.detail, exc.errors)
            return web.json_response(body, status=status)

        return route


def _check_gpu(gpu: dict[str, Any]) -> None:
    for pool in gpu["pools"]:
        if pool not in GPU_POOLS:
            raise Problem(400, f"gpu.pools: {pool!r} is not a serverless GPU pool (the catalog's `pool` "
                               f"values: {', '.join(GPU_POOLS)})")
    chosen = set().union(*(GPU_POOLS[p] for p in gpu["pools"]))
    excluded = {name.strip() for name in gpu["excludedTypes"]}
    unknown = sorted(excluded - chosen)
    if unknown:
        raise Problem(400, f"gpu.excludedTypes: {unknown[0]!r} is not a GPU type in the pools {', '.join(gpu['pools'])}")
    if not chosen - excluded:
        raise Problem(400, "gpu.excludedTypes leaves no GPU type in the pools chosen")
    if gpu["allowedCudaVersions"] and gpu["minCudaVersion"]:
        raise Problem(400, "gpu.allowedCudaVersions (an exact set) and gpu.minCudaVersion (a floor) are mutually "
                           "exclusive: send one")


def _patched_gpu(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics of `gpu`: omitted fields stay; pools sent replace the selection, and
    exclusions not restated with them are cleared; "" clears the CUDA floor."""
    gpu = dict(current)
    if "pools" in patch:
        gpu["pools"], gpu["excludedTypes"] = patch["pools"], patch.get("excludedTypes", [])
    for key in ("count", "allowedCudaVersions"):
        if key in patch:
            gpu[key] = patch[key]
    if "minCudaVersion" in patch:
        gpu["minCudaVersion"] = patch["minCudaVersion"] or None
    return gpu


def _not_allowed(methods: list[str]) -> Handler:
    async def handler(request: web.Request) -> tuple[int, Any]:
        raise Problem(405, f"{request.method} is not allowed here (vidagent serve answers {', '.join(methods)})")

    return handler


def _has_key(request: web.Request, key: str) -> bool:
    given = request.headers.get("Authorization", "").strip()
    if given[:7].lower() == "bearer ":
        given = given[7:].strip()
    return hmac.compare_digest(given.encode(), key.encode())


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise Problem(400, "request body is not valid JSON") from None


def _valid(body: Any, shape: Any) -> dict[str, Any]:
    found = problems(body, shape)
    if found:
        raise Problem(422, "Request validation failed.", found)
    return body


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
