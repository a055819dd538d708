"""What each endpoint should be on RunPod (REST v2 bodies), and making it so by name.

In v2 a template is a snapshot: an endpoint created from one copies its container settings
and keeps no link, and later template edits do not reach it. So each target has a template
(named like the endpoint, for the console and for creating it) and an endpoint whose own
body carries the image, env, disk and registry; both are compared field by field with what
RunPod has, and only the fields that differ are PATCHed. Nothing differs: nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import read_dotenv
from ..errors import ApiRefused, ConfigError, DeployError, VidagentError
from .rest import RestClient, listed
from .settings import POOLS, DeploySettings, EndpointSettings

CREATE, UPDATE, KEEP, UNDECIDED = "create", "update", "keep", "undecided"
# The container settings an endpoint carries itself (and a template holds for its creation).
CONTAINER = ("image", "env", "disk", "registry")


@dataclass
class Target:
    model: str  # yolo | whisper | vlm | segment
    name: str  # of its template and its endpoint
    image: str  # full reference, with tag
    dockerfile: Path | None  # built and pushed when set
    template: dict[str, Any]  # POST /templates body
    endpoint: dict[str, Any]  # POST /serverless body, without templateId
    env_key: str  # the .env variable its endpoint id goes into


def plan_targets(settings: DeploySettings, models: list[str], registry: str | None, tag: str | None) -> list[Target]:
    targets = []
    for model in models:
        endpoint = settings.endpoints[model]
        name = f"{settings.name_prefix}-{model}"
        image = endpoint.image or f"{registry}/vidagent-{model}:{tag}"
        env = {**(read_dotenv(endpoint.env_file) if endpoint.env_file else {}), **endpoint.env}
        registry_id = settings.registry_auth_id if endpoint.dockerfile else None
        container = {"image": image, "env": env, "disk": endpoint.container_disk_gb, "registry": registry_id}
        # SSH and Jupyter are for pods: v2 turns both on by default and injects their env.
        template = {"name": name, **container, "serverless": True, "startSsh": False, "startJupyter": False}
        body = {"name": name, "type": "QUEUE", **container, "gpu": gpu_body(endpoint),
                "workers": {"min": endpoint.workers_min, "max": endpoint.workers_max,
                            "idleTimeout": endpoint.idle_timeout_s},
                "scaling": {"type": "QUEUE_DELAY", "queueDelay": endpoint.queue_delay_s},
                "flashboot": "FLASHBOOT" if endpoint.flashboot else "OFF",
                "timeout": endpoint.execution_timeout_s * 1000}
        if endpoint.network_volume_id:
            body["networkVolumes"] = [endpoint.network_volume_id]
        if endpoint.data_centers:
            body["dataCenterIds"] = list(endpoint.data_centers)
        targets.append(Target(model, name, image, endpoint.dockerfile, template, body,
                              f"RUNPOD_{model.upper()}_ENDPOINT_ID"))
    return targets


def gpu_body(endpoint: EndpointSettings) -> dict[str, Any]:
    gpu: dict[str, Any] = {"pools": list(endpoint.gpus), "count": endpoint.gpu_count}
    if endpoint.exclude_gpus:
        gpu["excludedTypes"] = list(endpoint.exclude_gpus)
    if endpoint.allowed_cuda_versions:
        gpu["allowedCudaVersions"] = list(endpoint.allowed_cuda_versions)
    if endpoint.min_cuda_version:
        gpu["minCudaVersion"] = endpoint.min_cuda_version
    return gpu


# -- what differs -------------------------------------------------------------------------


def _gpu_key(gpu: Any) -> tuple:
    """A GPU selection as RunPod means it: pools and exclusions are sets; no CUDA constraint
    reads as [] and null."""
    gpu = gpu if isinstance(gpu, dict) else {}
    return (frozenset(gpu.get("pools") or ()), gpu.get("count", 1), frozenset(gpu.get("excludedTypes") or ()),
            frozenset(gpu.get("allowedCudaVersions") or ()), gpu.get("minCudaVersion") or None)


def _gpu_patch(gpu: dict[str, Any]) -> dict[str, Any]:
    """The whole selection restated: pools sent replace the pools and clear the exclusions not
    sent with them, and a CUDA constraint left out would stay, so an empty one clears it."""
    patch = {"pools": gpu["pools"], "count": gpu["count"]}
    if gpu.get("excludedTypes"):
        patch["excludedTypes"] = gpu["excludedTypes"]
    patch["allowedCudaVersions"] = gpu.get("allowedCudaVersions", [])
    patch["minCudaVersion"] = gpu.get("minCudaVersion", "")
    return patch


def differences(current: dict[str, Any], desired: dict[str, Any], fixed: tuple[str, ...] = ()) -> dict[str, Any]:
    """The PATCH body that makes `current` what `desired` says (empty: nothing to send).
    A field RunPod did not return counts as different: better a PATCH too many."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if key in fixed:
            continue
        have = current.get(key)
        if key == "name":
            same = base_name(str(have)) == value
        elif key == "gpu":
            same = _gpu_key(have) == _gpu_key(value)
        elif key == "workers":
            same = isinstance(have, dict) and all(have.get(k) == v for k, v in value.items())
        elif key == "scaling":
            same = isinstance(have, dict) and have.get("type") == value["type"] and all(
                _number_equal(have.get(k), v) for k, v in value.items() if k != "type")
        else:
            same = key in current and have == value
        if not same:
            patch[key] = _gpu_patch(value) if key == "gpu" else value
    return patch


def _number_equal(a: Any, b: Any) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and float(a) == float(b)


# -- templates and endpoints, by name -------------------------------------------------------


def base_name(name: str) -> str:
    """RunPod has shown FlashBoot endpoints as 'NAME -fb': the same endpoint."""
    return name.removesuffix(" -fb")


def named(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [item for item in items if base_name(str(item.get("name", ""))) == name]


def list_templates(rest: RestClient) -> list[dict[str, Any]]:
    return listed(rest.get("/templates"), "templates", "GET /templates")


def list_endpoints(rest: RestClient) -> list[dict[str, Any]]:
    return listed(rest.get("/serverless"), "endpoints", "GET /serverless")


def ensure_template(rest: RestClient, target: Target, templates: list[dict[str, Any]] | None) -> tuple[str, str]:
    """(template id, create | update | keep | undecided) for the target's template."""
    if templates is None:  # a dry run that could not read the API
        rest.show_write("POST", "/templates", target.template)
        return f"<id of template {target.name}>", UNDECIDED
    found = named(templates, target.name)
    if not found:
        created = rest.write("POST", "/templates", target.template,
                             dry_answer={"id": f"<id of new template {target.name}>"},
                             recover=_find(lambda: list_templates(rest), target.name))
        return created["id"], CREATE
    current = found[0]
    if current.get("serverless") is False:
        raise DeployError(f"template {target.name} ({current.get('id')}) is a Pod template: delete or rename it "
                          "in the RunPod console, or change name_prefix in the deploy settings")
    patch = differences(current, target.template, fixed=("serverless",))
    if not patch:
        return current["id"], KEEP
    rest.write("PATCH", f"/templates/{current['id']}", patch, dry_answer=current)
    return current["id"], UPDATE


def ensure_endpoint(rest: RestClient, target: Target, template_id: str,
                    endpoints: list[dict[str, Any]] | None) -> tuple[str, str]:
    """(endpoint id, create | update | keep | undecided) for the target's endpoint."""
    body = {**target.endpoint, "templateId": template_id}
    if endpoints is None:
        rest.show_write("POST", "/serverless", body)
        return f"<id of endpoint {target.name}>", UNDECIDED
    found = named(endpoints, target.name)
    if len(found) > 1:
        ids = ", ".join(str(e.get("id")) for e in found)
        raise DeployError(f"{len(found)} endpoints are named {target.name} ({ids}): delete the extra ones in the "
                          "RunPod console, then run deploy again")
    if not found:
        created = rest.write("POST", "/serverless", body, dry_answer={"id": f"<id of new endpoint {target.name}>"},
                             recover=_find(lambda: list_endpoints(rest), target.name))
        return created["id"], CREATE
    current = found[0]
    if current.get("type", "QUEUE") != "QUEUE":
        raise DeployError(f"endpoint {target.name} ({current.get('id')}) is a {current.get('type')} endpoint, not a "
                          "queue-based one: delete or rename it in the RunPod console")
    # The routing type is fixed at creation; the endpoint keeps no link to its template.
    patch = differences(current, target.endpoint, fixed=("type",))
    if not patch:
        return current["id"], KEEP
    rest.write("PATCH", f"/serverless/{current['id']}", patch, dry_answer=current)
    return current["id"], UPDATE


def _find(read: Callable[[], list[dict[str, Any]]], name: str) -> Callable[[], dict[str, Any] | None]:
    return lambda: next(iter(named(read(), name)), None)


def explain_refusal(exc: ApiRefused, target: Target, settings_path: Path) -> VidagentError:
    """RunPod's 4xx, read for what to change in the settings."""
    key = f"{settings_path}: endpoints.{target.model}"
    lower = exc.message.lower()
    if "cuda" in lower:
        return ConfigError(f"RunPod refused the CUDA versions of {target.name}: {exc.message} (fix "
                           f"{key}.allowed_cuda_versions or min_cuda_version)")
    if "gpu" in lower or "pool" in lower:
        return ConfigError(f"RunPod refused the GPUs of {target.name}: {exc.message} (fix {key}.gpus or "
                           f"exclude_gpus: pools {', '.join(POOLS)})")
    if any(word in lower for word in ("quota", "limit", "exceed", "balance", "insufficient")):
        return DeployError(f"RunPod refused {target.name} over an account limit: {exc.message} (lower "
                           f"{key}.workers_max, or ask RunPod support to raise the quota)")
    return exc


def endpoint_rows(endpoints: list[dict[str, Any]], names: list[str]) -> list[dict[str, str]]:
    """Ours among the account's endpoints, in the settings' order: name, id, image, GPUs, workers."""
    rows = []
    for name in names:
        for endpoint in named(endpoints, name):
            workers = endpoint.get("workers") or {}
            rows.append({
                "name": str(endpoint.get("name", "")),
                "id": str(endpoint.get("id", "")),
                "image": str(endpoint.get("image", "?")),
                "gpus": describe_gpus(endpoint.get("gpu")),
                "workers": f"{workers.get('min', '?')}-{workers.get('max', '?')}",
            })
    return rows


def describe_gpus(gpu: Any) -> str:
    """`ADA_24, AMPERE_24 without NVIDIA L4, CUDA 13.0`: pools, exclusions, CUDA constraint."""
    if not isinstance(gpu, dict) or not gpu.get("pools"):
        return "-"
    text = ", ".join(gpu["pools"])
    if gpu.get("excludedTypes"):
        text += " without " + ", ".join(gpu["excludedTypes"])
    if gpu.get("allowedCudaVersions"):
        text += f", CUDA {'/'.join(gpu['allowedCudaVersions'])}"
    elif gpu.get("minCudaVersion"):
        text += f", CUDA >= {gpu['minCudaVersion']}"
    return text
