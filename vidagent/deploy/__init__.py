"""`vidagent deploy`: the endpoints' images built and pushed, RunPod templates and serverless
endpoints created or updated through RunPod's REST API v2, their ids written into `.env`.

Safe to run again: templates and endpoints are found by name and PATCHed only in the fields
that differ from the settings, never created twice; with nothing changed nothing is sent.
Everything that can fail before a change is checked first (settings, API key, registry,
git, Docker, one read of the API), and images are pushed before anything points at them.

- settings.py: configs/deploy.yaml, checked; docker.py: build, push, image tags;
  rest.py: the v2 client; reconcile.py: the bodies, and what differs; envfile.py: .env.

The API is RUNPOD_REST_URL (default https://api.runpod.io/v2) with RUNPOD_API_KEY, from the
environment or `.env`. This package prints nothing itself: progress goes to `say`, the
dry-run plan to `show`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..config import read_dotenv
from ..errors import ApiRefused, ConfigError, DeployError
from .docker import Docker, image_tag
from .envfile import update_env_file
from .reconcile import (
    CREATE, KEEP, UNDECIDED, UPDATE, Target, describe_gpus, endpoint_rows, ensure_endpoint, ensure_template,
    explain_refusal, list_endpoints, list_templates, plan_targets,
)
from .rest import REST_URL, RestClient, rest_url
from .settings import MODELS, POOLS, DeploySettings, check_registry, chosen_models, default_config_path, load_deploy_settings

__all__ = [
    "MODELS", "POOLS", "REST_URL", "DeployRequest", "Deployed", "RestClient", "Target", "default_config_path",
    "deploy", "describe_gpus", "ensure_endpoint", "ensure_template", "image_tag", "load_deploy_settings",
    "plan_targets", "update_env_file",
]

_DONE_WORDS = {CREATE: "created", UPDATE: "updated", KEEP: "unchanged"}
_DRY_WORDS = {CREATE: "would be created", UPDATE: "would be updated", KEEP: "unchanged",
              UNDECIDED: "would be created or updated (undecided without the API)"}


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
    actions: dict[str, str]  # endpoint name → create | update | keep (| undecided in a dry run)
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
    rest = RestClient(rest_url(environ.get("RUNPOD_REST_URL")), api_key or "-", dry_run=request.dry_run, show=show)
    try:
        # One read before the long builds: a bad key or URL fails now, not in ten minutes.
        templates, endpoints = _read_state(rest, api_key, request.dry_run, show)
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
        return Deployed(ids, actions, endpoint_rows(list_endpoints(rest), names))
    finally:
        rest.close()


def _prepare(request: DeployRequest, environ: Mapping[str, str]) -> tuple[DeploySettings, list[Target], str]:
    """Everything that needs no network: settings, key, registry, image tag, the targets."""
    settings = load_deploy_settings(request.settings_path)
    models = chosen_models(settings, request.only)
    api_key = environ.get("RUNPOD_API_KEY", "").strip()
    if not api_key and not request.dry_run:
        raise ConfigError("RUNPOD_API_KEY is not set: export it or put RUNPOD_API_KEY=... in ./.env "
                          "(create a key in the RunPod console under Settings > API Keys)")
    registry = tag = None
    if any(settings.endpoints[m].dockerfile is not None for m in models):
        registry = check_registry(*_registry_source(request, environ, settings))
        tag = image_tag(settings.context)
    return settings, plan_targets(settings, models, registry, tag), api_key


def _build_and_push(docker: Docker, builds: list[Target], say: Callable[[str], None], dry_run: bool) -> None:
    """Every image pushed before any endpoint points at one."""
    for target in builds:
        if not dry_run:
            say(f"{target.model}: building {target.image}")
        docker.build(target.dockerfile, target.image)
    for target in builds:
        if not dry_run:
            say(f"{target.model}: pushing {target.image}")
        docker.push(target.image)


def _read_state(rest: RestClient, api_key: str, dry_run: bool,
                show: Callable[[str], None]) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """The account's templates and endpoints. A dry run that cannot read them (no key, no
    network, RunPod down) says so and plans every template and endpoint as undecided; a
    rejected key is an error in a dry run too."""
    if not dry_run:
        return list_templates(rest), list_endpoints(rest)
    if not api_key:
        show("# no RUNPOD_API_KEY: the API is not read, so whether each template and endpoint is created or "
             "updated is undecided; the creates are shown")
        return None, None
    show("# every API call sends 'Authorization: Bearer ***' (RUNPOD_API_KEY)")
    try:
        return list_templates(rest), list_endpoints(rest)
    except DeployError as exc:  # network, 5xx, 429 (one try in a dry run), or a refused read
        problem = str(exc)
    show(f"# could not read the API ({problem}): whether each template and endpoint is created or updated "
         "is undecided; the creates are shown (an update PATCHes only the fields that differ)")
    return None, None


def _apply(rest: RestClient, targets: list[Target], templates: list[dict[str, Any]] | None,
           endpoints: list[dict[str, Any]] | None, ids: dict[str, str], request: DeployRequest,
           say: Callable[[str], None]) -> dict[str, str]:
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
