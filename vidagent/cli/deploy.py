"""`vidagent deploy`: build, push and deploy the endpoints to RunPod; ids into .env.

The work is vidagent/deploy/'s; this module parses options and prints. httpx, pydantic
and the deploy module load inside the command, so `vidagent --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def deploy_command(
    only: Annotated[
        Optional[list[str]],
        typer.Option("--only", metavar="NAME", show_default=False,
                     help="Deploy only this endpoint: yolo, whisper, vlm or segment; repeat (or comma-separate) for more. Default: all in the settings."),
    ] = None,
    registry: Annotated[
        Optional[str],
        typer.Option(show_default=False,
                     help="Registry to push the yolo, whisper and segment images to, e.g. docker.io/you or ghcr.io/org. Env: VIDAGENT_DEPLOY_REGISTRY; YAML: registry."),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", "-c", show_default=False,
                     help="Deploy settings: GPUs, workers, timeouts, FlashBoot, disk per endpoint. Default: configs/deploy.yaml."),
    ] = None,
    env_file: Annotated[
        Path, typer.Option(help="Where the endpoint ids are written (other lines kept); also read for RUNPOD_API_KEY.")
    ] = Path(".env"),
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print every docker command and API call (method, URL, JSON body; key redacted) and change nothing. Reads the API once to tell creates from updates; without it (no network, no key) it says which it could not decide."),
    ] = False,
) -> None:
    """Build and push the endpoint images, create or update the RunPod templates and
    endpoints (yolo, whisper, the VLM on RunPod's vLLM worker, and segment: decode, YOLO
    and Whisper in one worker of a fleet), and write their ids into .env as
    RUNPOD_YOLO_ENDPOINT_ID, RUNPOD_WHISPER_ENDPOINT_ID, RUNPOD_VLM_ENDPOINT_ID and
    RUNPOD_SEGMENT_ENDPOINT_ID.

    Safe to run again: templates and endpoints are matched by name and updated only where
    they differ, never duplicated. Talks to RunPod's REST API v2 (https://api.runpod.io/v2);
    needs RUNPOD_API_KEY (environment or .env); RUNPOD_REST_URL points it at another copy
    of the API (e.g. `vidagent serve`'s rest_url). Images are tagged VERSION-GITSHA, plus
    -dirty for a checkout with changes.

    Exit codes: 0 deployed; 1 docker, the registry or RunPod refused a step; 2 bad
    settings, missing key or tools; 130 interrupted.
    """
    from ..deploy import DeployRequest, default_config_path, deploy
    from ..errors import Interrupted

    request = DeployRequest(
        settings_path=config or default_config_path(),
        only=[part.strip() for value in only or [] for part in value.split(",") if part.strip()],
        registry=registry,
        env_file=env_file,
        dry_run=dry_run,
    )
    try:
        result = deploy(request, say=_say, show=print)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; what was created or updated so far stays (run deploy again to finish)") from None
    if not dry_run:
        _print_table(result.rows)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _print_table(rows: list[dict[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="RunPod endpoints", title_justify="left")
    for column in ("name", "id", "image", "GPUs", "workers"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["id"], row["image"], row["gpus"], row["workers"])
    # Piped or redirected, the table keeps its full width instead of wrapping ids at 80 columns.
    Console(width=None if sys.stdout.isatty() else 200).print(table)
