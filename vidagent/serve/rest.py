"""The part of RunPod's REST API (`https://rest.runpod.io/v1`) that `vidagent deploy` uses,
served under `/v1` beside the serverless API, in memory.

- `GET`/`POST /v1/templates`, `GET`/`PATCH /v1/templates/{id}`, `GET`/`POST /v1/endpoints`,
  `GET`/`PATCH /v1/endpoints/{id}`, with the field names and defaults of RunPod's OpenAPI
  spec (TemplateCreateInput, EndpointCreateInput, …). What RunPod refuses is a 400 with
  `{"error": message}`: an unknown field, a wrong type, an unknown GPU type id, a taken
  template name, a missing or non-serverless template, workers over the account quota.
- An endpoint whose template's image is one of serve's `images` (compared without the tag)
  gets worker processes running the mapped handler, with the template's `env` under the
  mapping's own, and is served at `/v2/{id}/…` like a configured endpoint: deploy, then
  analyze, works on this machine. A PATCH that changes what runs rolls its workers.

Not emulated: DELETE, `/update`, workers' listing (`includeWorkers`), CPU endpoints,
network volumes; autoscaling, as elsewhere in serve.
"""

from __future__ import annotations

import logging
import secrets
import string
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ..errors import BackendError
from .config import EndpointSpec

log = logging.getLogger("vidagent.serve")

# RunPod's GPU type ids (the OpenAPI spec's gpuTypeIds enum, which also lists a few ids with
# a doubled space as RunPod spells them).
GPU_TYPES = frozenset({
    "AMD Instinct MI300X OAM", "NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-80GB",
    "NVIDIA A30", "NVIDIA A40", "NVIDIA A5000 Ada", "NVIDIA B200", "NVIDIA GeForce RTX 3070",
    "NVIDIA GeForce RTX 3080", "NVIDIA GeForce RTX 3080 Ti", "NVIDIA GeForce RTX 3080TI",
    "NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 3090 Ti", "NVIDIA GeForce RTX 4070 Ti",
    "NVIDIA GeForce RTX 4080", "NVIDIA GeForce RTX 4080 SUPER", "NVIDIA GeForce RTX 4090",
    "NVIDIA GeForce RTX 5080", "NVIDIA GeForce RTX 5090", "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL",
    "NVIDIA H100 PCIe", "NVIDIA H200", "NVIDIA H200 NVL", "NVIDIA L4", "NVIDIA L40", "NVIDIA L40S",
    "NVIDIA RTX 2000 Ada Generation", "NVIDIA RTX 4000 Ada Generation", "NVIDIA RTX 4000 SFF Ada Generation",
    "NVIDIA RTX 5000 Ada Generation", "NVIDIA RTX 6000 Ada Generation", "NVIDIA RTX A2000", "NVIDIA RTX A30",
    "NVIDIA RTX A4000", "NVIDIA RTX A4500", "NVIDIA RTX A5000", "NVIDIA RTX A6000",
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "NVIDIA  A30", "NVIDIA  RTX A4500",
    "Tesla T4", "Tesla V100-FHHL-16GB", "Tesla V100-PCIE-16GB", "Tesla V100-PCIE-32GB",
    "Tesla V100-SXM2-16GB", "Tesla V100-SXM2-32GB",
})

# Field → type, per RunPod's create inputs; updates take the same minus what cannot change.
TEMPLATE_FIELDS: dict[str, type] = {
    "name": str, "imageName": str, "category": str, "containerDiskInGb": int,
    "containerRegistryAuthId": str, "dockerEntrypoint": list, "dockerStartCmd": list, "env": dict,
    "isPublic": bool, "isServerless": bool, "ports": list, "readme": str, "volumeInGb": int,
    "volumeMountPath": str,
}
TEMPLATE_UPDATE_FIELDS = {k: v for k, v in TEMPLATE_FIELDS.items() if k not in ("category", "isServerless")}
TEMPLATE_DEFAULTS: dict[str, Any] = {
    "category": "NVIDIA", "containerDiskInGb": 50, "dockerEntrypoint": [], "dockerStartCmd": [], "env": {},
    "isPublic": False, "isServerless": False, "ports": [], "readme": "", "volumeInGb": 20,
    "volumeMountPath": "/workspace",
}
ENDPOINT_FIELDS: dict[str, type] = {
    "templateId": str, "name": str, "computeType": str, "gpuTypeIds": list, "gpuCount": int,
    "allowedCudaVersions": list, "minCudaVersion": str, "cpuFlavorIds": list, "vcpuCount": int,
    "dataCenterIds": list, "networkVolumeId": str, "networkVolumeIds": list, "workersMin": int,
    "workersMax": int, "idleTimeout": int, "executionTimeoutMs": int, "flashboot": bool,
    "scalerType": str, "scalerValue": int,
}
ENDPOINT_UPDATE_FIELDS = {k: v for k, v in ENDPOINT_FIELDS.items() if k != "computeType"}
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "computeType": "GPU", "gpuTypeIds": ["NVIDIA GeForce RTX 4090"], "gpuCount": 1, "workersMin": 0,
    "workersMax": 3, "idleTimeout": 5, "executionTimeoutMs": 600_000, "flashboot": False,
    "scalerType": "QUEUE_DELAY", "scalerValue": 4,
}

_ID_ALPHABET = string.ascii_lowercase + string.digits


class RestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def image_repository(image: str) -> str:
    """`host:5000/team/app:tag` and `…@sha256:…` → `host:5000/team/app`: what `images` keys on."""
    name = image.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


class RestApi:
    """Templates and endpoints of one serve run, and the workers of the endpoints it made."""

    def __init__(self, hub: Any):
        self.hub = hub  # app.Hub: its config (images, quota), job store and supervisor
        self.templates: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}

    # -- routes -----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        routes = [
            ("rest.templates", "/v1/templates", {"GET": self.list_templates, "POST": self.create_template}),
            ("rest.template", "/v1/templates/{id}", {"GET": self.get_template, "PATCH": self.update_template}),
            ("rest.endpoints", "/v1/endpoints", {"GET": self.list_endpoints, "POST": self.create_endpoint}),
            ("rest.endpoint", "/v1/endpoints/{id}", {"GET": self.get_endpoint, "PATCH": self.update_endpoint}),
        ]
        for name, path, handlers in routes:
            resource = app.router.add_resource(path, name=name)
            for method, handler in handlers.items():
                resource.add_route(method, _answering(handler))

    async def list_templates(self, request: web.Request) -> Any:
        return list(self.templates.values())

    async def get_template(self, request: web.Request) -> Any:
        return self._template(request.match_info["id"], status=404)

    async def create_template(self, request: web.Request) -> Any:
        body = _fields(await _json(request), TEMPLATE_FIELDS, required=("name", "imageName"))
        self._check_template_name(body["name"])
        template = {"id": _new_id(10), **TEMPLATE_DEFAULTS, **body, "isRunpod": False}
        _check_template(template)
        self.templates[template["id"]] = template
        log.info("template %s (%s) created: %s", template["id"], template["name"], template["imageName"])
        return template

    async def update_template(self, request: web.Request) -> Any:
        template = self._template(request.match_info["id"], status=404)
        body = _fields(await _json(request), TEMPLATE_UPDATE_FIELDS)
        if "name" in body and body["name"] != template["name"]:
            self._check_template_name(body["name"])
        updated = {**template, **body}
        _check_template(updated)
        template.update(updated)
        log.info("template %s (%s) updated: %s", template["id"], template["name"], template["imageName"])
        for endpoint in self.endpoints.values():
            if endpoint["templateId"] == template["id"]:
                await self._run_workers(endpoint)
        return template

    async def list_endpoints(self, request: web.Request) -> Any:
        with_template = request.query.get("includeTemplate", "").lower() == "true"
        return [self._endpoint_view(e, with_template) for e in self.endpoints.values()]

    async def get_endpoint(self, request: web.Request) -> Any:
        endpoint = self._endpoint(request.match_info["id"])
        return self._endpoint_view(endpoint, request.query.get("includeTemplate", "").lower() == "true")

    async def create_endpoint(self, request: web.Request) -> Any:
        body = _fields(await _json(request), ENDPOINT_FIELDS, required=("templateId",))
        endpoint = {**ENDPOINT_DEFAULTS, "name": "", **body}
        endpoint.update(id=self._free_endpoint_id(), version=0, userId="user_vidagent_serve",
                        createdAt=datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
        self._check_endpoint(endpoint)
        self.endpoints[endpoint["id"]] = endpoint
        log.info("endpoint %s (%s) created", endpoint["id"], endpoint["name"])
        await self._run_workers(endpoint)
        return self._endpoint_view(endpoint, False)

    async def update_endpoint(self, request: web.Request) -> Any:
        endpoint = self._endpoint(request.match_info["id"])
        body = _fields(await _json(request), ENDPOINT_UPDATE_FIELDS)
        updated = {**endpoint, **body, "version": endpoint["version"] + 1}
        self._check_endpoint(updated)
        endpoint.update(updated)
        log.info("endpoint %s (%s) updated", endpoint["id"], endpoint["name"])
        await self._run_workers(endpoint)
        return self._endpoint_view(endpoint, False)

    # -- rules ------------------------------------------------------------------------

    def _template(self, template_id: str, status: int) -> dict[str, Any]:
        template = self.templates.get(template_id)
        if template is None:
            raise RestError(status, f"template {template_id!r} not found")
        return template

    def _endpoint(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise RestError(404, f"endpoint {endpoint_id!r} not found")
        return endpoint

    def _check_template_name(self, name: str) -> None:
        if any(t["name"] == name for t in self.templates.values()):
            raise RestError(400, f"template name {name!r} is already taken: template names must be unique")

    def _check_endpoint(self, endpoint: dict[str, Any]) -> None:
        template = self._template(endpoint["templateId"], status=400)
        if not template["isServerless"]:
            raise RestError(400, f"template {template['id']!r} is a Pod template; an endpoint needs isServerless: true")
        for gpu in endpoint["gpuTypeIds"]:
            if gpu not in GPU_TYPES:
                raise RestError(400, f"gpuTypeIds: {gpu!r} is not a RunPod GPU type id (e.g. 'NVIDIA GeForce RTX 4090')")
        for key, low, high in (("gpuCount", 1, 8), ("workersMin", 0, None), ("workersMax", 0, None),
                               ("idleTimeout", 1, 3600), ("executionTimeoutMs", 1, None), ("scalerValue", 1, None)):
            value = endpoint[key]
            if value < low or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise RestError(400, f"{key} must be {bounds} (got {value})")
        if endpoint["workersMin"] > endpoint["workersMax"]:
            raise RestError(400, f"workersMin ({endpoint['workersMin']}) must not exceed workersMax ({endpoint['workersMax']})")
        quota = self.hub.config.worker_quota
        others = sum(e["workersMax"] for e in self.endpoints.values() if e["id"] != endpoint["id"])
        if others + endpoint["workersMax"] > quota:
            raise RestError(400, f"workersMax {endpoint['workersMax']} would exceed your account's serverless worker "
                                 f"quota of {quota} ({others} already allocated to other endpoints)")

    def _free_endpoint_id(self) -> str:
        while True:  # RunPod's ids look like "jpnw0v75y3qoql"; never one that serve already runs
            candidate = _new_id(14)
            if not self.hub.store.has_endpoint(candidate):
                return candidate

    def _endpoint_view(self, endpoint: dict[str, Any], with_template: bool) -> dict[str, Any]:
        template = self.templates.get(endpoint["templateId"], {})
        view = {**endpoint, "env": dict(template.get("env", {}))}
        if with_template:
            view["template"] = dict(template)
        return view

    # -- workers ----------------------------------------------------------------------

    async def _run_workers(self, endpoint: dict[str, Any]) -> None:
        """Start, roll or stop the endpoint's workers to match its template's image."""
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
        template = self.templates[endpoint["templateId"]]
        image = image_repository(template["imageName"])
        mapped = next((s for name, s in self.hub.config.images.items() if image_repository(name) == image), None)
        if mapped is None:
            log.warning("endpoint %s runs image %s, which serve has no handler for (pass --image %s=HANDLER "
                        "to run it here)", endpoint["id"], template["imageName"], image)
            return None
        workers = min(mapped.workers, endpoint["workersMax"])
        if workers == 0:
            return None
        env = {**template["env"], **mapped.env}
        return EndpointSpec(handler=mapped.handler, workers=workers, env=env, python=mapped.python)


def _answering(handler):
    """JSON in, JSON out, RestError → its status and `{"error": message}`."""

    async def route(request: web.Request) -> web.Response:
        try:
            return web.json_response(await handler(request))
        except RestError as exc:
            return web.json_response({"error": exc.message}, status=exc.status)

    return route


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise RestError(400, "request body is not valid JSON") from None


def _fields(body: Any, allowed: dict[str, type], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RestError(400, "request body must be a JSON object")
    for key in required:
        if key not in body:
            raise RestError(400, f"{key} is required")
    for key, value in body.items():
        kind = allowed.get(key)
        if kind is None:
            raise RestError(400, f"unknown field {key!r}")
        # JSON true is not an integer here, as in a typed API.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RestError(400, f"{key} must be of type {_JSON_TYPES[kind]}")
    if "env" in body and not all(isinstance(v, str) for v in body["env"].values()):
        raise RestError(400, "env values must be strings")
    return body


def _check_template(template: dict[str, Any]) -> None:
    if not template["name"].strip() or not template["imageName"].strip():
        raise RestError(400, "name and imageName must not be empty")
    if template["containerDiskInGb"] < 1:
        raise RestError(400, f"containerDiskInGb must be at least 1 (got {template['containerDiskInGb']})")


_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", list: "array", dict: "object"}


def _new_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))
