"""`vidagent doctor`: what this machine has, and what to do about what it lacks."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

from rich.console import Console
from rich.table import Table


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _ffmpeg() -> tuple[bool, str]:
    binary = shutil.which("ffmpeg")
    if binary is None:
        return False, "not on PATH (needed by scripts/ only): apt-get install ffmpeg"
    first = subprocess.run([binary, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return True, f"{binary}: {first}"


def _pyav() -> tuple[bool, str]:
    try:
        import av
    except ImportError as exc:
        return False, f"cannot import PyAV ({exc}): pip install av"
    libs = ", ".join(f"{k} {'.'.join(map(str, v))}" for k, v in list(av.library_versions.items())[:2])
    return True, f"PyAV {av.__version__} ({libs})"


def _package(name: str, extra: str) -> tuple[bool, str]:
    version = _version(name)
    if version is None:
        return False, f"not installed: pip install 'vidagent[{extra}]'"
    return True, f"{name} {version}"


def _gpu() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return True, "torch not installed: CPU only (make setup installs it)"
    if torch.cuda.is_available():
        return True, f"CUDA: {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return True, f"no CUDA GPU: models run on the CPU (torch {torch.__version__})"


def _model(kind: str, name: str) -> tuple[bool, str]:
    from ..workers.catalog import OFFLINE_PREFIX, resolve_whisper

    if name.startswith(OFFLINE_PREFIX):
        if kind == "whisper":
            try:
                return True, f"{name} -> {resolve_whisper(name)}"
            except LookupError as exc:
                return False, str(exc)
        return True, f"{name}: built here on first use (random weights, for tests and demos)"
    if Path(name).exists():
        return True, f"{name}: local file"
    return True, f"{name}: downloaded from the model hub on first use (needs network)"


def _runpod(settings) -> tuple[bool, str]:
    """What the RunPod backend would use; the key itself is never shown."""
    key = "RUNPOD_API_KEY set" if settings.runpod_api_key else "RUNPOD_API_KEY not set (export it or put it in ./.env)"
    ids = ", ".join(
        f"{name}={settings.endpoint_id(name) or 'unset'}" for name in ("yolo", "whisper", "vlm")
    )
    from ..errors import ConfigError
    from ..transports import decide_backends

    try:
        chosen = ", ".join(f"{e} {b}" for e, b in decide_backends(settings, ["yolo", "whisper"]).items())
    except ConfigError as exc:
        return False, f"{key}; endpoints: {ids}; {exc}"
    return True, f"{key}; endpoints: {ids}; backend {settings.backend}: {chosen}"


def _docker() -> tuple[bool, str]:
    binary = shutil.which("docker")
    if binary is None:
        return True, "not found (only `vidagent deploy` needs it)"
    return True, f"{binary} (client; deploy checks the daemon)"


def _proxy_encoder() -> tuple[bool, str]:
    """What `--html-video proxy` encodes with, from PyAV's own FFmpeg."""
    from ..errors import MediaError
    from ..media.proxy import proxy_format

    try:
        fmt, _, video, audio = proxy_format(True)
    except MediaError as exc:
        return False, str(exc)
    except ImportError:
        return False, "PyAV is missing"
    return True, f"{video} + {audio} in {fmt} (PyAV), for --html-video proxy"


def run_doctor(config: Path | None) -> int:
    from ..config import load_settings
    from ..errors import ConfigError

    rows: list[tuple[str, bool, str]] = []
    try:
        settings = load_settings(config)
        source = str(config) if config else "defaults (+ VIDAGENT_* environment)"
        rows.append(("config", True, source))
    except ConfigError as exc:
        settings = None
        rows.append(("config", False, str(exc)))
    rows.append(("PyAV (decoding)", *_pyav()))
    rows.append(("ffmpeg binary", *_ffmpeg()))
    rows.append(("HTML proxy encoder", *_proxy_encoder()))
    rows.append(("ultralytics", *_package("ultralytics", "local")))
    rows.append(("faster-whisper", *_package("faster-whisper", "local")))
    rows.append(("transformers (VLM)", *_package("transformers", "local")))
    rows.append(("docker", *_docker()))
    rows.append(("compute", *_gpu()))
    if settings is not None:
        rows.append(("detector model", *_model("yolo", settings.yolo_model)))
        rows.append(("whisper model", *_model("whisper", settings.whisper_model)))
        rows.append(("RunPod", *_runpod(settings)))
        from ..storage.client import describe_store

        rows.append(("object store", *describe_store(settings)))

    table = Table(title="vidagent doctor", show_lines=False)
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail", overflow="fold")
    for name, ok, detail in rows:
        table.add_row(name, "[green]yes[/]" if ok else "[red]no[/]", detail)
    Console().print(table)
    essential = {"config", "PyAV (decoding)"}
    return 0 if all(ok for name, ok, _ in rows if name in essential) else 1
