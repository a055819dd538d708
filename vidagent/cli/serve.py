"""`vidagent serve`: RunPod's serverless API on this machine, running real handler scripts.

aiohttp and the server load inside the command, so `vidagent --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

_FAULTS = "Fault injection (client API only)"


def serve_command(
    endpoint: Annotated[
        Optional[list[str]],
        typer.Option("--endpoint", "-e", metavar="ID=PATH[:WORKERS]", show_default=False,
                     help="Run handler script PATH as endpoint ID with WORKERS processes (default 1); repeatable."),
    ] = None,
    image: Annotated[
        Optional[list[str]],
        typer.Option("--image", metavar="IMAGE=PATH[:WORKERS]", show_default=False,
                     help="An endpoint created through the REST API (/v1, e.g. by vidagent deploy) whose template's image is IMAGE (any tag) runs handler script PATH; repeatable."),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", "-c", help="YAML file: endpoints (handler, workers, env, python), images, limits, faults. See docs/serve.md."),
    ] = None,
    host: Annotated[
        Optional[str], typer.Option(help="Address to listen on. Default: 127.0.0.1.", show_default=False)
    ] = None,
    port: Annotated[
        Optional[int], typer.Option(help="Port; 0 picks a free one (see the ready line). Default: 0.", show_default=False)
    ] = None,
    allow_remote: Annotated[
        Optional[bool],
        typer.Option("--allow-remote", help="Allow a --host that is not a loopback address.", show_default=False),
    ] = None,
    api_key: Annotated[
        Optional[str],
        typer.Option(envvar="VIDAGENT_SERVE_API_KEY", show_default=False,
                     help="Require 'Authorization: Bearer KEY' on the client API. Never logged."),
    ] = None,
    retention_s: Annotated[
        Optional[float], typer.Option(help="Seconds a finished /run job stays readable. Default: 1800.", show_default=False)
    ] = None,
    runsync_wait_s: Annotated[
        Optional[float], typer.Option(help="Seconds /runsync waits before answering IN_PROGRESS. Default: 90.", show_default=False)
    ] = None,
    start_timeout_s: Annotated[
        Optional[float], typer.Option(help="Seconds workers may take to load before serve gives up. Default: 300.", show_default=False)
    ] = None,
    fault_5xx: Annotated[
        Optional[float], typer.Option("--fault-5xx", metavar="RATE", show_default=False, rich_help_panel=_FAULTS,
                                      help="Fraction of requests answered 500, 502 or 503 before they are handled (not on /run, /runsync, chat completions).")
    ] = None,
    fault_lost: Annotated[
        Optional[float], typer.Option("--fault-lost", metavar="RATE", show_default=False, rich_help_panel=_FAULTS,
                                      help="Fraction of /run, /runsync and chat completion requests that run, then answer 502 (a lost answer).")
    ] = None,
    fault_429: Annotated[
        Optional[float], typer.Option("--fault-429", metavar="RATE", show_default=False, rich_help_panel=_FAULTS,
                                      help="Fraction of requests answered 429 with Retry-After.")
    ] = None,
    fault_retry_after_s: Annotated[
        Optional[int], typer.Option(metavar="S", show_default=False, rich_help_panel=_FAULTS,
                                    help="Retry-After of an injected 429, seconds. Default: 1.")
    ] = None,
    fault_delay_ms: Annotated[
        Optional[float], typer.Option(metavar="MS", show_default=False, rich_help_panel=_FAULTS,
                                      help="Latency added to every request.")
    ] = None,
    fault_seed: Annotated[
        Optional[int], typer.Option(show_default=False, rich_help_panel=_FAULTS,
                                    help="Seed of the fault draws, for reproducible runs.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every job event, not only results and workers.")
    ] = False,
) -> None:
    """Run RunPod-compatible serverless endpoints on this machine (local emulator).

    Starts each endpoint's handler script (one that calls runpod.serverless.start) as
    worker processes and serves RunPod's API under /v2/ENDPOINT_ID/: run, runsync,
    status, stream, cancel, retry, health, purge-queue; and RunPod's REST API for
    templates and endpoints under /v1 (what vidagent deploy calls). When every worker is
    ready it prints one JSON line on stdout: {"base_url": ..., "rest_url": ...,
    "endpoints": {...}}. Logs go to stderr. Stop with Ctrl-C or SIGTERM (exit 0).
    """
    import asyncio
    import logging
    import sys

    from ..extras import require

    require("serve")  # the emulator runs on aiohttp and the workers on RunPod's SDK
    from ..serve.config import load_serve_config
    from ..serve.server import serve

    overrides = {
        "host": host,
        "port": port,
        "allow_remote": allow_remote,
        "retention_s": retention_s,
        "runsync_wait_s": runsync_wait_s,
        "start_timeout_s": start_timeout_s,
        "faults.rate_5xx": fault_5xx,
        "faults.rate_429": fault_429,
        "faults.rate_lost": fault_lost,
        "faults.retry_after_s": fault_retry_after_s,
        "faults.delay_ms": fault_delay_ms,
        "faults.seed": fault_seed,
    }
    settings = load_serve_config(config, overrides, endpoint, image_flags=image)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s serve: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("vidagent.serve")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    raise typer.Exit(asyncio.run(serve(settings, api_key=api_key or None)))
