"""configs/deploy.yaml: what each endpoint should be on RunPod, checked before anything runs.

Errors name the file and the key. Paths in the file are relative to it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import env_as_text, read_yaml_file
from ..errors import ConfigError

MODELS = ("yolo", "whisper", "vlm", "segment")
CHECKOUT = Path(__file__).resolve().parents[2]  # the repository, when vidagent runs from one

# RunPod's serverless GPU pools. REST v2 endpoints take pool ids (`gpu.pools`), read from
# `pool` in GET /v2/catalog/gpus; the ids are those of docs.runpod.io references/gpu-types
# ("GPU pools") and, for ADA_32_PRO, BLACKWELL_96 and BLACKWELL_180, flash/configuration/gpu-types.
POOLS = ("AMPERE_16", "AMPERE_24", "ADA_24", "ADA_32_PRO", "AMPERE_48", "ADA_48_PRO", "AMPERE_80",
         "ADA_80_PRO", "BLACKWELL_96", "HOPPER_141", "BLACKWELL_180")
_CUDA = r"^\d+\.\d+$"  # major.minor, as v2's allowedCudaVersions and minCudaVersion take them
_REGISTRY = re.compile(r"^[a-z0-9][a-z0-9._:/-]*[a-z0-9]$")


class EndpointSettings(BaseModel):
    """One endpoint: where its image comes from, and RunPod's settings for it."""

    model_config = ConfigDict(extra="forbid")

    dockerfile: Path | None = Field(None, description="Built from the context and pushed as REGISTRY/vidagent-<name>:TAG.")
    image: str | None = Field(None, description="An image used as it is (no build), e.g. runpod/worker-v1-vllm:v2.25.2.")
    env_file: Path | None = Field(None, description="KEY=VALUE lines (comments allowed) for the endpoint's env.")
    env: dict[str, str] = Field(default_factory=dict, description="More env, over env_file's.")
    gpus: list[str] = Field(min_length=1, description="GPU pools (ADA_24, …); workers go to whichever has capacity.")
    exclude_gpus: list[str] = Field(default_factory=list, description="GPU type ids left out of those pools.")
    gpu_count: int = Field(1, ge=1, le=8)
    allowed_cuda_versions: list[str] = Field(default_factory=list, description="Host CUDA versions (major.minor) only these.")
    min_cuda_version: str | None = Field(None, pattern=_CUDA, description="Host CUDA version at least this.")
    workers_min: int = Field(0, ge=0)
    workers_max: int = Field(3, ge=0)
    idle_timeout_s: int = Field(5, ge=1, le=3600)
    execution_timeout_s: int = Field(600, ge=5)
    queue_delay_s: float = Field(4, ge=0.5, description="Scale up when a job waits this long in the queue.")
    flashboot: bool = True
    container_disk_gb: int = Field(20, ge=1, le=1000)
    network_volume_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]+$", description="A network volume the workers mount at /runpod-volume (v2's "
        "networkVolumes): where RunPod's S3 API puts uploads, since it signs no URLs.")
    data_centers: list[str] = Field(
        default_factory=list, description="Data center ids the workers may run in (v2's dataCenterIds); a network "
        "volume's own data center when one is mounted. Empty: any.")

    _env_as_text = field_validator("env", mode="before")(env_as_text)

    @field_validator("gpus")
    @classmethod
    def _known_pools(cls, value: list[str]) -> list[str]:
        for gpu in value:
            if gpu not in POOLS:
                hint = (" is a GPU type id, not a pool: give the pool that has it and leave its other cards "
                        "out with exclude_gpus" if " " in gpu.strip() else " is not a RunPod GPU pool")
                raise ValueError(f"{gpu!r}{hint}; pools: {', '.join(POOLS)}")
        if len(set(value)) != len(value):
            raise ValueError("a pool is listed twice")
        return value

    @field_validator("allowed_cuda_versions")
    @classmethod
    def _cuda_versions(cls, value: list[str]) -> list[str]:
        for version in value:
            if not re.match(_CUDA, version):
                raise ValueError(f"{version!r}: give CUDA versions as major.minor, e.g. '12.8'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "EndpointSettings":
        if (self.dockerfile is None) == (self.image is None):
            raise ValueError("give either dockerfile (built and pushed) or image (used as it is)")
        if self.workers_min > self.workers_max:
            raise ValueError(f"workers_min ({self.workers_min}) must not exceed workers_max ({self.workers_max})")
        if self.allowed_cuda_versions and self.min_cuda_version:
            raise ValueError("give allowed_cuda_versions (an exact set) or min_cuda_version (a floor), not both")
        return self


class DeploySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str | None = Field(None, description="Where images are pushed, e.g. docker.io/you or ghcr.io/org.")
    registry_auth_id: str | None = Field(None, description="RunPod's container registry credential id, for a private registry.")
    name_prefix: str = Field("vidagent", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$")
    context: Path = Field(Path(".."), description="Docker build context (the repository), relative to this file.")
    endpoints: dict[Literal["yolo", "whisper", "vlm", "segment"], EndpointSettings]


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


def chosen_models(settings: DeploySettings, only: list[str]) -> list[str]:
    for model in only:
        if model not in MODELS:
            raise ConfigError(f"--only {model!r}: choose from {', '.join(MODELS)}")
        if model not in settings.endpoints:
            raise ConfigError(f"--only {model}: the deploy settings have no endpoints.{model}")
    return [m for m in settings.endpoints if not only or m in only]
