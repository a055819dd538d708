"""`vidagent deploy`: the endpoints' images built and pushed, RunPod templates and endpoints
created or updated through RunPod's REST API, their ids written into `.env`.

Safe to run again: templates and endpoints are found by name and updated (PATCH) only
where they differ from the settings, never created twice. Everything that can fail before
a change is checked first (settings, API key, registry, git, Docker, one read of the API),
and images are pushed before any template points at them.

Settings come from `configs/deploy.yaml` (validated here, errors name the file and key);
the API from `RUNPOD_REST_URL` (default https://rest.runpod.io/v1) and `RUNPOD_API_KEY`,
read from the environment or `.env`. The key goes into the Authorization header and
nowhere else: dry-run output, progress and errors never contain it.

This module prints nothing itself: progress goes to `say`, the dry-run plan to `show`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import time
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import __version__
from .config import env_as_text, read_dotenv, read_yaml_file
from .files import atomic_write
from .errors import ConfigError, VidagentError
from .transports.runpod import _retry_after

REST_URL = "https://rest.runpod.io/v1"
DOCKER = "docker"  # resolved on PATH with shutil.which when deploy runs
PLATFORM = "linux/amd64"  # RunPod's GPU hosts
MODELS = ("yolo", "whisper", "vlm")
CHECKOUT = Path(__file__).resolve().parents[1]  # the repository, when vidagent runs from one
MAX_RETRIES = 6
REQUEST_TIMEOUT_S = 30.0
_BACKOFF_BASE_S, _BACKOFF_MAX_S = 0.5, 20.0  # as the RunPod transport

# RunPod's GPU pools (docs: references/gpu-types) and the GPU type ids of each, which is what
# the REST API takes (`gpuTypeIds`; pools are a GraphQL and console notion). Order = preference.
GPU_POOLS: dict[str, tuple[str, ...]] = {
    "AMPERE_16": ("NVIDIA RTX A4000", "NVIDIA RTX A4500", "NVIDIA RTX 4000 Ada Generation", "NVIDIA RTX 2000 Ada Generation"),
    "AMPERE_24": ("NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"),
    "ADA_24": ("NVIDIA GeForce RTX 4090",),
    "AMPERE_48": ("NVIDIA RTX A6000", "NVIDIA A40"),
    "ADA_48_PRO": ("NVIDIA L40", "NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation"),
    "AMPERE_80": ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"),
    "ADA_80_PRO": ("NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3"),
    "HOPPER_141": ("NVIDIA H200",),
}
_POOL_LIKE = re.compile(r"^[A-Z]+_[0-9]+(_[A-Z]+)?$")  # what a pool id looks like, known or not
_REGISTRY = re.compile(r"^[a-z0-9][a-z0-9._:/-]*[a-z0-9]$")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


class DeployError(VidagentError):
    """Docker, the registry or RunPod refused a step (exit 1)."""


class ApiRefused(DeployError):
    """RunPod answered a request with a 4xx other than 401/403."""

    def __init__(self, status: int, what: str, message: str):
        super().__init__(f"RunPod refused {what} ({status}): {message}")
        self.status = status
        self.what = what
        self.message = message


# -- settings (configs/deploy.yaml) ----------------------------------------------------


class EndpointSettings(BaseModel):
    """One endpoint: where its image comes from, and RunPod's settings for it."""

    model_config = ConfigDict(extra="forbid")

    dockerfile: Path | None = Field(None, description="Built from the context and pushed as REGISTRY/vidagent-<name>:TAG.")
    image: str | None = Field(None, description="An image used as it is (no build), e.g. runpod/worker-v1-vllm:v2.26.0.")
    env_file: Path | None = Field(None, description="KEY=VALUE lines (comments allowed) for the template's env.")
    env: dict[str, str] = Field(default_factory=dict, description="More env, over env_file's.")
    gpus: list[str] = Field(min_length=1, description="GPU pools (ADA_24…) or GPU type ids, in order of preference.")
    gpu_count: int = Field(1, ge=1, le=8)
    workers_min: int = Field(0, ge=0)
    workers_max: int = Field(3, ge=0)
    idle_timeout_s: int = Field(5, ge=1, le=3600)
    execution_timeout_s: int = Field(600, ge=5)
    flashboot: bool = True
    container_disk_gb: int = Field(20, ge=1, le=1000)

    _env_as_text = field_validator("env", mode="before")(env_as_text)

    @field_validator("gpus")
    @classmethod
    def _known_gpus(cls, value: list[str]) -> list[str]:
        for gpu in value:
            if _POOL_LIKE.match(gpu) and gpu not in GPU_POOLS:
                raise ValueError(f"unknown GPU pool {gpu!r}; known pools: {', '.join(GPU_POOLS)} "
                                 "(or give GPU type ids such as 'NVIDIA L40S')")
            if not gpu.strip():
                raise ValueError("empty GPU name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "EndpointSettings":
        if (self.dockerfile is None) == (self.image is None):
            raise ValueError("give either dockerfile (built and pushed) or image (used as it is)")
        if self.workers_min > self.workers_max:
            raise ValueError(f"workers_min ({self.workers_min}) must not exceed workers_max ({self.workers_max})")
        return self

    def gpu_type_ids(self) -> list[str]:
        """Pools expanded to RunPod's GPU type ids, order kept, each once."""
        ids: list[str] = []
        for gpu in self.gpus:
            for type_id in GPU_POOLS.get(gpu, (gpu,)):
                if type_id not in ids:
                    ids.append(type_id)
        return ids


class DeploySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str | None = Field(None, description="Where images are pushed, e.g. docker.io/you or ghcr.io/org.")
    registry_auth_id: str | None = Field(None, description="RunPod's container registry auth id, for a private registry.")
    name_prefix: str = Field("vidagent", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$")
    context: Path = Field(Path(".."), description="Docker build context (the repository), relative to this file.")
    endpoints: dict[Literal["yolo", "whisper", "vlm"], EndpointSettings]


def default_config_path() -> Path:
    """./configs/deploy.yaml, else the one of the checkout vidagent runs from."""
    for candidate in (Path("configs/deploy.yaml"), CHECKOUT / "configs" / "deploy.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("no deploy settings: pass --config FILE (configs/deploy.yaml in the repository is the model)")


def load_deploy_settings(path: Path) -> DeploySettings:
    """Read and check the YAML file; paths in it are relative to it. Errors name file and key."""
    data = read_yaml_file(path, "deploy settings", "registry, endpoints, …")
    try:
        settings = DeploySettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"] if part != "[key]") or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{path}: {where}: {message}") from None
    return _resolve_paths(settings, path)


def _resolve_paths(settings: DeploySettings, path: Path) -> DeploySettings:
    base = path.parent
    settings.context = (base / settings.context).resolve()
    if not settings.context.is_dir():
        raise ConfigError(f"{path}: context: not a folder: {settings.context}")
    for name, endpoint in settings.endpoints.items():
        for key in ("dockerfile", "env_file"):
            value = getattr(endpoint, key)
            if value is None:
                continue
            resolved = (base / value).resolve()
            if not resolved.is_file():
                raise ConfigError(f"{path}: endpoints.{name}.{key}: file not found: {resolved}")
            setattr(endpoint, key, resolved)
    return settings


# -- the plan: what each endpoint should look like on RunPod ----------------------------


@dataclass
class Target:
    model: str  # yolo | whisper | vlm
    name: str  # of its template and its endpoint
    image: str  # full reference, with tag
    dockerfile: Path | None  # built and pushed when set
    template: dict[str, Any]  # REST body of the template
    endpoint: dict[str, Any]  # REST body of the endpoint, without templateId
    env_key: str  # the .env variable its endpoint id goes into


def plan_targets(settings: DeploySettings, models: list[str], registry: str | None, tag: str | None) -> list[Target]:
    targets = []
    for model in models:
        endpoint = settings.endpoints[model]
        name = f"{settings.name_prefix}-{model}"
        image = endpoint.image or f"{registry}/vidagent-{model}:{tag}"
        env = {**(read_dotenv(endpoint.env_file) if endpoint.env_file else {}), **endpoint.env}
        template = {"name": name, "imageName": image, "isServerless": True,
                    "containerDiskInGb": endpoint.container_disk_gb, "env": env}
        if endpoint.dockerfile and settings.registry_auth_id:
            template["containerRegistryAuthId"] = settings.registry_auth_id
        body = {
            "name": name,
            "gpuTypeIds": endpoint.gpu_type_ids(),
            "gpuCount": endpoint.gpu_count,
            "workersMin": endpoint.workers_min,
            "workersMax": endpoint.workers_max,
            "idleTimeout": endpoint.idle_timeout_s,
            "executionTimeoutMs": endpoint.execution_timeout_s * 1000,
            "flashboot": endpoint.flashboot,
        }
        targets.append(Target(model, name, image, endpoint.dockerfile, template, body,
                              f"RUNPOD_{model.upper()}_ENDPOINT_ID"))
    return targets


def check_registry(registry: str | None, where: str) -> str:
    if not registry:
        raise ConfigError("no registry to push the images to: pass --registry (e.g. docker.io/you or "
                          "ghcr.io/org), set VIDAGENT_DEPLOY_REGISTRY, or set registry: in the deploy settings")
    registry = registry.strip().rstrip("/")
    if "://" in registry:
        raise ConfigError(f"{where} {registry!r}: give the registry without a scheme, e.g. ghcr.io/org")
    if not _REGISTRY.match(registry):
        raise ConfigError(f"{where} {registry!r}: not a registry path (lower case, e.g. docker.io/you or ghcr.io/org)")
    return registry


def image_tag(context: Path) -> str:
    """VERSION-SHORTSHA, plus -dirty when the checkout has changes (untracked files count:
    they may be in the build context)."""
    revision = _git(context, "rev-parse", "--short", "HEAD")
    dirty = _git(context, "status", "--porcelain")
    return f"{_package_version(context)}-{revision}" + ("-dirty" if dirty else "")


def _package_version(context: Path) -> str:
    """The version of the package being built, which need not be the one running."""
    try:
        return tomllib.loads((context / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return __version__


def _git(context: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(context), *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise DeployError("git is not installed: image tags carry the git revision") from None
    if proc.returncode != 0:
        reason = _last_line(proc.stderr.splitlines()) or f"exit code {proc.returncode}"
        raise DeployError(f"cannot tag the images: {context} is not a git checkout ({reason})")
    return proc.stdout.strip()


# -- docker ------------------------------------------------------------------------------

_DAEMON_DOWN = ("cannot connect to the docker daemon", "is the docker daemon running", "error during connect")
_PUSH_REFUSED = ("denied", "unauthorized", "no basic auth credentials", "authentication required")


class Docker:
    """The docker CLI in a subprocess; its output goes to `say` as it comes."""

    def __init__(self, context: Path, say: Callable[[str], None], dry_run: bool, show: Callable[[str], None]):
        self.context = context
        self.say = say
        self.dry_run = dry_run
        self.show = show
        self.binary = shutil.which(DOCKER)

    def check(self) -> None:
        """Fail before anything changes: no docker, or no daemon behind it."""
        if self.dry_run:
            return
        if self.binary is None:
            raise ConfigError(f"docker is not installed (no {DOCKER!r} on PATH): install Docker to build the "
                              "images, or deploy only the VLM with --only vlm")
        self._run(["info", "--format", "{{.ServerVersion}}"], echo=False)

    def build(self, target: Target) -> None:
        assert target.dockerfile is not None
        self._run(["build", "--platform", PLATFORM, "-f", str(target.dockerfile), "-t", target.image, str(self.context)])

    def push(self, target: Target) -> None:
        self._run(["push", target.image], image=target.image)

    def _run(self, args: list[str], echo: bool = True, image: str | None = None) -> None:
        if self.dry_run:
            self.show(shlex.join([DOCKER, *args]))
            return
        tail: deque[str] = deque(maxlen=40)
        proc = subprocess.Popen([self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", cwd=self.context)
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if echo:
                self.say(line)
        code = proc.wait()
        if code != 0:
            raise _docker_failure(args, code, list(tail), image)


def _docker_failure(args: list[str], code: int, lines: list[str], image: str | None) -> DeployError:
    """One line that says what to do, from what docker printed."""
    daemon = _line_with(lines, _DAEMON_DOWN)
    if daemon:
        return DeployError(f"the Docker daemon is not running ({daemon}): start it (sudo systemctl start docker, "
                           "or open Docker Desktop) and run deploy again")
    refused = _line_with(lines, _PUSH_REFUSED) if args[0] == "push" else None
    if refused and image:
        host = _registry_host(image)
        return DeployError(f"the registry refused the push of {image} ({refused}): run `docker login {host}` "
                           "as an account that may push there, then run deploy again")
    command = shlex.join([DOCKER, *args])
    return DeployError(f"`{command}` failed with exit code {code}: {_last_line(lines) or 'no output'}")


def _line_with(lines: list[str], needles: tuple[str, ...]) -> str | None:
    for line in lines:
        if any(needle in line.lower() for needle in needles):
            return line.strip()[:300]
    return None


def _last_line(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()[:300]
    return ""


def _registry_host(image: str) -> str:
    """docker login's argument: the first component when it names a host, else Docker Hub."""
    first = image.split("/", 1)[0]
    return first if ("." in first or ":" in first or first == "localhost") and "/" in image else "docker.io"


# -- RunPod's REST API ----------------------------------------------------------------------


class RestClient:
    """RunPod's REST API with the RunPod transport's discipline: a timeout on every request,
    429/5xx/network errors retried with exponential backoff and full jitter, honouring
    Retry-After. A create that may have reached RunPod before its answer was lost is looked
    up (`recover`) before it is sent again, so a retry never makes a duplicate.

    In a dry run, reads are sent and writes are only shown (method, URL, JSON body)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        dry_run: bool = False,
        show: Callable[[str], None] = print,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        max_retries: int = MAX_RETRIES,
    ):
        self.base_url = base_url.rstrip("/")
        self.dry_run = dry_run
        self._show = show
        self._http = http or httpx.Client(timeout=REQUEST_TIMEOUT_S)
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._sleep = sleep
        self._jitter = jitter
        self._max_retries = max_retries

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        if self.dry_run:
            query = f"?{httpx.QueryParams(params)}" if params else ""
            self._show(f"GET {self.base_url}{path}{query}")
        return self._send("GET", path, params=params)

    def write(self, method: str, path: str, body: dict[str, Any], *, dry_answer: dict[str, Any],
              recover: Callable[[], dict[str, Any] | None] | None = None) -> dict[str, Any]:
        if self.dry_run:
            self._show(f"{method} {self.base_url}{path}")
            self._show("  " + json.dumps(_redacted(body)))
            return dry_answer
        return self._send(method, path, body=body, recover=recover)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
              recover: Callable[[], dict[str, Any] | None] | None = None) -> Any:
        what = f"{method} {path}"
        for attempt in range(self._max_retries + 1):
            try:
                response = self._http.request(method, self.base_url + path, json=body, params=params,
                                              headers=self._headers)
            except httpx.TransportError as exc:
                problem, maybe_done, wait = f"cannot reach {self.base_url} ({what}): {type(exc).__name__}", True, None
            else:
                code = response.status_code
                if code != 429 and code < 500:
                    return _answer(response, what)
                # A 429 was refused unread; a 5xx may have been half done.
                problem, maybe_done, wait = f"RunPod kept answering {code} to {what}", code >= 500, _retry_after(response)
            if maybe_done and recover is not None:
                found = recover()
                if found is not None:
                    return found
            if attempt == self._max_retries:
                raise DeployError(f"{problem}; giving up after {self._max_retries + 1} tries")
            self._sleep(wait if wait is not None else self._backoff(attempt))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt) * self._jitter()


def _answer(response: httpx.Response, what: str) -> Any:
    code = response.status_code
    if code == 401:
        raise ConfigError("RunPod rejected the API key (401): check RUNPOD_API_KEY")
    if code == 403:
        raise ConfigError(f"RunPod refused {what} (403): the API key needs read and write access "
                          "(RunPod console > Settings > API Keys)")
    if code >= 400:
        raise ApiRefused(code, what, _error_message(response))
    try:
        return response.json()
    except ValueError:
        raise DeployError(f"RunPod sent a non-JSON answer to {what}") from None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body.get("message"))
        if isinstance(error, dict):
            error = error.get("message")
        if error:
            return " ".join(str(error).split())[:300]
    return " ".join(response.text.split())[:300] or response.reason_phrase


def _redacted(body: dict[str, Any]) -> dict[str, Any]:
    """What a dry run shows: env values that look like secrets masked."""
    if "env" not in body:
        return body
    env = {k: ("***" if _SECRET_NAME.search(k) else v) for k, v in body["env"].items()}
    return {**body, "env": env}


# -- templates and endpoints, by name ------------------------------------------------------


def base_name(name: str) -> str:
    """RunPod has shown FlashBoot endpoints as 'NAME -fb': the same endpoint."""
    return name.removesuffix(" -fb")


def _named(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [item for item in items if base_name(str(item.get("name", ""))) == name]


def _differs(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """A field the API did not return counts as different: better a PATCH too many."""
    for key, value in desired.items():
        have = current.get(key)
        if key == "name":
            have = base_name(str(have))
        if have != value:
            return True
    return False


def ensure_template(rest: RestClient, target: Target, templates: list[dict[str, Any]]) -> tuple[str, str]:
    """(template id, create | update | keep) for the target's template."""
    found = _named(templates, target.name)
    if not found:
        created = rest.write("POST", "/templates", target.template,
                             dry_answer={"id": f"<id of new template {target.name}>"},
                             recover=lambda: next(iter(_named(_list_templates(rest), target.name)), None))
        return created["id"], "create"
    current = found[0]
    if current.get("isServerless") is False:
        raise DeployError(f"template {target.name} ({current.get('id')}) is a Pod template: delete or rename it "
                          "in the RunPod console, or change name_prefix in the deploy settings")
    update = {k: v for k, v in target.template.items() if k != "isServerless"}  # fixed at creation
    if not _differs(current, update):
        return current["id"], "keep"
    rest.write("PATCH", f"/templates/{current['id']}", update, dry_answer=current)
    return current["id"], "update"


def ensure_endpoint(rest: RestClient, target: Target, template_id: str,
                    endpoints: list[dict[str, Any]]) -> tuple[str, str]:
    """(endpoint id, create | update | keep) for the target's endpoint."""
    body = {**target.endpoint, "templateId": template_id}
    found = _named(endpoints, target.name)
    if len(found) > 1:
        ids = ", ".join(str(e.get("id")) for e in found)
        raise DeployError(f"{len(found)} endpoints are named {target.name} ({ids}): delete the extra ones in the "
                          "RunPod console, then run deploy again")
    if not found:
        created = rest.write("POST", "/endpoints", body,
                             dry_answer={"id": f"<id of new endpoint {target.name}>"},
                             recover=lambda: next(iter(_named(_list_endpoints(rest), target.name)), None))
        return created["id"], "create"
    current = found[0]
    if not _differs(current, body):
        return current["id"], "keep"
    rest.write("PATCH", f"/endpoints/{current['id']}", body, dry_answer=current)
    return current["id"], "update"


def _list_templates(rest: RestClient) -> list[dict[str, Any]]:
    # Templates used by endpoints are listed only on request.
    return rest.get("/templates", {"includeEndpointBoundTemplates": "true"})


def _list_endpoints(rest: RestClient, with_template: bool = False) -> list[dict[str, Any]]:
    return rest.get("/endpoints", {"includeTemplate": "true"} if with_template else None)


def explain_refusal(exc: ApiRefused, target: Target, settings_path: Path) -> VidagentError:
    """RunPod's 400s, read for what to change."""
    key = f"{settings_path}: endpoints.{target.model}"
    lower = exc.message.lower()
    if "gpu" in lower:
        return ConfigError(f"RunPod refused the GPUs of {target.name}: {exc.message} (fix {key}.gpus: "
                           f"pools {', '.join(GPU_POOLS)} or GPU type ids)")
    if any(word in lower for word in ("quota", "limit", "exceed", "balance", "insufficient")):
        return DeployError(f"RunPod refused {target.name} over an account limit: {exc.message} (lower "
                           f"{key}.workers_max, or ask RunPod support to raise the quota)")
    return exc


# -- .env -------------------------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"^(\s*)(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def update_env_file(path: Path, values: dict[str, str]) -> None:
    """Set KEY=VALUE lines: existing keys replaced where they stand (every occurrence, `export`
    kept), other lines and comments untouched, new keys appended. Atomic: a reader sees the
    old file or the new one; its permissions are kept (a new file is private: it holds keys)."""
    target = path.resolve()  # write through a symlink, not over it
    try:
        text = target.read_text(encoding="utf-8")
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        text, mode = "", 0o600
    lines = text.splitlines(keepends=True)
    seen = set()
    for i, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match and match.group(3) in values:
            key = match.group(3)
            ending = "\n" if line.endswith("\n") else ""
            lines[i] = f"{match.group(1)}{match.group(2) or ''}{key}={values[key]}{ending}"
            seen.add(key)
    new = [f"{key}={value}\n" for key, value in values.items() if key not in seen]
    if new and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    atomic_write(target, "".join(lines + new), mode)


# -- the whole run ------------------------------------------------------------------------------


_DONE_WORDS = {"create": "created", "update": "updated", "keep": "unchanged"}
_DRY_WORDS = {"create": "would be created", "update": "would be updated", "keep": "unchanged"}


@dataclass
class DeployRequest:
    settings_path: Path
    only: list[str] = field(default_factory=list)  # empty: every endpoint in the settings
    registry: str | None = None  # --registry
    env_file: Path = Path(".env")
    dry_run: bool = False


@dataclass
class Deployed:
    endpoint_ids: dict[str, str]  # .env variable → endpoint id (placeholders in a dry run)
    actions: dict[str, str]  # endpoint name → create | update | keep
    rows: list[dict[str, str]]  # what exists now, for the table (empty in a dry run)


def deploy(
    request: DeployRequest,
    say: Callable[[str], None],
    show: Callable[[str], None],
    environ: Mapping[str, str] | None = None,
) -> Deployed:
    """The whole run. `environ` defaults to the environment over `request.env_file`."""
    environ = {**read_dotenv(request.env_file), **os.environ} if environ is None else environ
    settings, targets, api_key = _prepare(request, environ)
    docker = Docker(settings.context, say, request.dry_run, show)
    builds = [t for t in targets if t.dockerfile is not None]
    if builds:
        docker.check()
    rest = RestClient(environ.get("RUNPOD_REST_URL") or REST_URL, api_key, dry_run=request.dry_run, show=show)
    try:
        if request.dry_run:
            show("# every API call sends 'Authorization: Bearer ***' (RUNPOD_API_KEY)")
        # One read before the long builds: a bad key or URL fails now, not in ten minutes.
        templates, endpoints = _list_templates(rest), _list_endpoints(rest)
        _build_and_push(docker, builds, say, request.dry_run)
        ids: dict[str, str] = {}
        try:
            actions = _apply(rest, targets, templates, endpoints, ids, request, say)
        finally:  # endpoints made before a failure are real: their ids belong in .env too
            if ids and not request.dry_run:
                update_env_file(request.env_file, ids)
                say(f"wrote {', '.join(ids)} to {request.env_file}")
        if request.dry_run:
            for key, value in ids.items():
                show(f"# would set {key}={value} in {request.env_file}")
            return Deployed(ids, actions, [])
        names = [f"{settings.name_prefix}-{m}" for m in settings.endpoints]
        return Deployed(ids, actions, endpoint_rows(_list_endpoints(rest, with_template=True), names))
    finally:
        rest.close()


def _prepare(request: DeployRequest, environ: Mapping[str, str]) -> tuple[DeploySettings, list[Target], str]:
    """Everything that needs no network: settings, key, registry, image tag, the targets."""
    settings = load_deploy_settings(request.settings_path)
    models = _chosen_models(settings, request.only)
    api_key = environ.get("RUNPOD_API_KEY", "").strip()
    if not api_key:
        raise ConfigError("RUNPOD_API_KEY is not set: export it or put RUNPOD_API_KEY=... in ./.env "
                          "(create a key in the RunPod console under Settings > API Keys)")
    registry = tag = None
    if any(settings.endpoints[m].dockerfile is not None for m in models):
        registry = check_registry(*_registry_source(request, environ, settings))
        tag = image_tag(settings.context)
    return settings, plan_targets(settings, models, registry, tag), api_key


def _build_and_push(docker: Docker, builds: list[Target], say: Callable[[str], None], dry_run: bool) -> None:
    """Every image pushed before any template points at one."""
    for step, run in (("building", docker.build), ("pushing", docker.push)):
        for target in builds:
            if not dry_run:
                say(f"{target.model}: {step} {target.image}")
            run(target)


def _apply(rest: RestClient, targets: list[Target], templates: list[dict[str, Any]], endpoints: list[dict[str, Any]],
           ids: dict[str, str], request: DeployRequest, say: Callable[[str], None]) -> dict[str, str]:
    """Templates and endpoints made to match the targets; their ids go into `ids` as they come."""
    words = _DRY_WORDS if request.dry_run else _DONE_WORDS
    actions = {}
    for target in targets:
        try:
            template_id, did_template = ensure_template(rest, target, templates)
            endpoint_id, did_endpoint = ensure_endpoint(rest, target, template_id, endpoints)
        except ApiRefused as exc:
            raise explain_refusal(exc, target, request.settings_path) from None
        say(f"{target.model}: template {target.name} {words[did_template]}, "
            f"endpoint {target.name} {words[did_endpoint]} ({endpoint_id})")
        ids[target.env_key] = endpoint_id
        actions[target.name] = did_endpoint
    return actions


def _registry_source(request: DeployRequest, environ: Mapping[str, str], settings: DeploySettings) -> tuple[str | None, str]:
    """The registry and where it came from (for messages): flag > environment > settings."""
    if request.registry:
        return request.registry, "--registry"
    if environ.get("VIDAGENT_DEPLOY_REGISTRY"):
        return environ["VIDAGENT_DEPLOY_REGISTRY"], "VIDAGENT_DEPLOY_REGISTRY"
    return settings.registry, f"{request.settings_path}: registry"


def _chosen_models(settings: DeploySettings, only: list[str]) -> list[str]:
    for model in only:
        if model not in MODELS:
            raise ConfigError(f"--only {model!r}: choose from {', '.join(MODELS)}")
        if model not in settings.endpoints:
            raise ConfigError(f"--only {model}: the deploy settings have no endpoints.{model}")
    return [m for m in settings.endpoints if not only or m in only]


def endpoint_rows(endpoints: list[dict[str, Any]], names: list[str]) -> list[dict[str, str]]:
    """Ours among the account's endpoints, in the settings' order: name, id, image, GPUs, workers."""
    rows = []
    for name in names:
        for endpoint in _named(endpoints, name):
            rows.append({
                "name": str(endpoint.get("name", "")),
                "id": str(endpoint.get("id", "")),
                "image": str((endpoint.get("template") or {}).get("imageName", "?")),
                "gpus": describe_gpus(list(endpoint.get("gpuTypeIds") or [])),
                "workers": f"{endpoint.get('workersMin', '?')}-{endpoint.get('workersMax', '?')}",
            })
    return rows


def describe_gpus(type_ids: list[str]) -> str:
    """GPU type ids in their order, a whole pool shown by its name."""
    parts: list[str] = []
    for type_id in type_ids:
        pool = next((p for p, members in GPU_POOLS.items() if type_id in members), None)
        if pool is not None and all(m in type_ids for m in GPU_POOLS[pool]):
            if pool not in parts:
                parts.append(pool)
        else:
            parts.append(type_id)
    return ", ".join(parts) or "-"
