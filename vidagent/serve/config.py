"""What `vidagent serve` runs: endpoints (handler scripts and worker counts), limits, faults.

Two layers, flags over a YAML file (`--config`); the file's handler paths are relative to
the file, `--endpoint` paths to the working directory. The API key is never read from the
file: it belongs in `--api-key` or `VIDAGENT_SERVE_API_KEY`, not in a file someone commits.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import env_as_text, read_yaml_file
from ..errors import ConfigError

# Endpoint ids appear in every URL, worker ids and logs: keep them URL- and shell-safe.
ENDPOINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._:/@-]*$")


class FaultSettings(BaseModel):
    """Failures injected into the client API (never the worker job API or admin routes)."""

    model_config = ConfigDict(extra="forbid")

    rate_5xx: float = Field(0.0, ge=0, le=1, description="Fraction of client requests answered 500/502/503 "
                            "before they are handled; not /run, /runsync nor chat completions (see rate_lost).")
    rate_429: float = Field(0.0, ge=0, le=1, description="Fraction of client requests answered 429.")
    rate_lost: float = Field(0.0, ge=0, le=1, description="Fraction of /run, /runsync and chat completion requests "
                             "accepted and run whose answer is then replaced by a 502, as if lost on the way back.")
    retry_after_s: int = Field(1, ge=0, le=3600, description="Retry-After of an injected 429, seconds.")
    delay_ms: float = Field(0.0, ge=0, le=60_000, description="Latency added to every client request.")
    seed: int | None = Field(None, description="Seed of the fault draws (reproducible runs).")

    @model_validator(mode="after")
    def _rates_fit(self) -> "FaultSettings":
        if self.rate_5xx + self.rate_429 + self.rate_lost > 1:
            raise ValueError("rate_5xx + rate_429 + rate_lost must not exceed 1")
        return self

    @property
    def active(self) -> bool:
        return bool(self.rate_5xx or self.rate_429 or self.rate_lost or self.delay_ms)


class EndpointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handler: Path = Field(description="Handler script that calls runpod.serverless.start.")
    workers: int = Field(1, ge=0, le=64, description="Worker processes kept running (0: an endpoint no worker serves).")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment of its workers.")
    python: str | None = Field(None, description="Interpreter for its workers; default: this one.")

    _env_as_text = field_validator("env", mode="before")(env_as_text)


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on (loopback unless allow_remote).")
    port: int = Field(0, ge=0, le=65535, description="Port; 0 picks a free one.")
    allow_remote: bool = Field(False, description="Permit a non-loopback host.")
    retention_s: float = Field(1800, gt=0, description="How long a finished /run job stays readable.")
    sync_retention_s: float = Field(60, gt=0, description="How long a finished /runsync job stays readable.")
    runsync_wait_s: float = Field(90, gt=0, le=300, description="How long /runsync waits by default.")
    openai_wait_s: float = Field(
        300, gt=0, le=3600, description="How long an OpenAI-compatible request waits for its job (generation is slow)."
    )
    start_timeout_s: float = Field(300, gt=0, description="How long workers may take to start.")
    faults: FaultSettings = Field(default_factory=FaultSettings)
    endpoints: dict[str, EndpointSpec] = Field(default_factory=dict)
    # The REST API v2 (/v2/templates, /v2/serverless; vidagent/serve/rest.py): an endpoint created
    # there whose image is one of these (its tag ignored) runs this handler, so `vidagent deploy` works here.
    images: dict[str, EndpointSpec] = Field(default_factory=dict)
    worker_quota: int = Field(20, ge=0, description="Most workersMax over all REST-created endpoints (RunPod's account quota).")

    @field_validator("endpoints")
    @classmethod
    def _ids(cls, value: dict[str, EndpointSpec]) -> dict[str, EndpointSpec]:
        for name in value:
            if not ENDPOINT_ID.match(name):
                raise ValueError(f"endpoint id {name!r}: use letters, digits, '-' and '_'")
        return value

    @field_validator("images")
    @classmethod
    def _image_names(cls, value: dict[str, EndpointSpec]) -> dict[str, EndpointSpec]:
        for name in value:
            if not IMAGE_NAME.match(name):
                raise ValueError(f"image {name!r}: expected a Docker image name such as registry.example.com/team/vidagent-yolo")
        return value


def parse_endpoint_flag(
    text: str, option: str = "--endpoint", example: str = "yolo=endpoints/yolo/handler.py:2"
) -> tuple[str, Path, int | None]:
    """`ID=PATH[:WORKERS]` → (id, path, workers or None); `--image` uses the same form."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        what = "ID" if option == "--endpoint" else "IMAGE"
        raise ConfigError(f"{option} {text!r}: expected {what}=PATH[:WORKERS], e.g. {example}")
    workers = None
    head, colon, tail = rest.rpartition(":")
    if colon and tail.isdigit():
        rest, workers = head, int(tail)
    return name, Path(rest), workers


def load_serve_config(
    path: Path | None,
    overrides: Mapping[str, Any] | None = None,
    endpoint_flags: list[str] | None = None,
    cwd: Path | None = None,
    image_flags: list[str] | None = None,
) -> ServeConfig:
    """Build the config: YAML file, then flags (`None` values mean "not given")."""
    cwd = cwd or Path.cwd()
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_yaml(path)
        for section in ("endpoints", "images"):
            specs = data.get(section) or {}
            for spec in specs.values() if isinstance(specs, dict) else []:
                if isinstance(spec, dict) and "handler" in spec:
                    spec["handler"] = path.parent / str(spec["handler"])
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key.startswith("faults."):
            data.setdefault("faults", {})[key.split(".", 1)[1]] = value
        else:
            data[key] = value
    endpoints = data.setdefault("endpoints", {})
    if not isinstance(endpoints, dict):
        raise ConfigError(f"{path}: 'endpoints' must be a mapping of endpoint id to settings")
    for flag in endpoint_flags or []:
        name, handler, workers = parse_endpoint_flag(flag)
        spec = dict(endpoints.get(name) or {})
        spec["handler"] = cwd / handler
        if workers is not None:
            spec["workers"] = workers
        endpoints[name] = spec
    images = data.setdefault("images", {})
    if not isinstance(images, dict):
        raise ConfigError(f"{path}: 'images' must be a mapping of image name to settings")
    for flag in image_flags or []:
        name, handler, workers = parse_endpoint_flag(flag, option="--image", example="registry.example.com/team/vidagent-yolo=endpoints/yolo/handler.py")
        spec = dict(images.get(name) or {})
        spec["handler"] = cwd / handler
        if workers is not None:
            spec["workers"] = workers
        images[name] = spec
    try:
        config = ServeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        source = f"{path}: " if path else ""
        raise ConfigError(f"{source}{where}: {err['msg']}") from None
    _check(config)
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml_file(path, "config file")
    if "api_key" in data:
        raise ConfigError(f"{path}: api_key is not read from files; use --api-key or VIDAGENT_SERVE_API_KEY")
    return data


def _check(config: ServeConfig) -> None:
    if not config.endpoints and not config.images:
        raise ConfigError(
            "no endpoints: pass --endpoint ID=PATH[:WORKERS] or --image NAME=PATH[:WORKERS], "
            "or a --config file with 'endpoints:' or 'images:'"
        )
    specs = [(f"endpoint {name}", spec) for name, spec in config.endpoints.items()]
    specs += [(f"image {name}", spec) for name, spec in config.images.items()]
    for what, spec in specs:
        if not spec.handler.is_file():
            raise ConfigError(f"{what}: handler script not found: {spec.handler}")
        if spec.python and shutil.which(spec.python) is None:
            raise ConfigError(f"{what}: python interpreter not found: {spec.python}")
    if not config.allow_remote and not is_loopback(config.host):
        raise ConfigError(
            f"--host {config.host} is not a loopback address; pass --allow-remote to listen on it "
            "(and set an API key: anyone who can reach it can run your handlers)"
        )


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)
