"""Workers: `handle(input: dict) -> dict`, the job-JSON contract between client and GPU.

The same function runs in-process (local transport), inside the RunPod endpoint image
(`endpoints/<name>/handler.py`) and under `vidagent serve`. Workers import nothing from
transports, pipeline, report or cli. Built-ins are registered exactly like third-party
workers: a name mapped to a module that has `handle`, plus the `vidagent.workers`
entry-point group for packages that add their own.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import Any, Callable

Handler = Callable[[dict[str, Any]], dict[str, Any]]

BUILTIN_WORKERS: dict[str, str] = {
    "yolo": "vidagent.workers.yolo",
    "whisper": "vidagent.workers.whisper",
    "vlm": "vidagent.workers.vlm",
    "segment": "vidagent.workers.segment",
}


class WorkerInputError(ValueError):
    """The job input is invalid: the job fails and must not be retried."""


def worker_names() -> list[str]:
    names = set(BUILTIN_WORKERS)
    names.update(ep.name for ep in entry_points(group="vidagent.workers"))
    return sorted(names)


def get_handler(name: str) -> Handler:
    if name in BUILTIN_WORKERS:
        return importlib.import_module(BUILTIN_WORKERS[name]).handle
    for ep in entry_points(group="vidagent.workers"):
        if ep.name == name:
            target = ep.load()
            return getattr(target, "handle", target)
    raise KeyError(f"no worker named {name!r}; known: {', '.join(worker_names())}")


def parse_input(model, payload: dict[str, Any]):
    """Validate a job input against a pydantic model, as a WorkerInputError naming the field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "input"
        raise WorkerInputError(f"input field '{where}': {err['msg']}") from None


# -- worker settings ----------------------------------------------------------------------
# A worker's own settings (precision, batch sizes, pixel budget) are VIDAGENT_* variables of
# the process it runs in: the endpoint template's env on RunPod, the shell for the local
# backend. They are read when a model loads, so a job never pays for them.


class WorkerSettingError(WorkerInputError):
    """A VIDAGENT_* worker variable holds a value the worker cannot use: no job can run,
    so none is retried."""


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise WorkerSettingError(f"{name}: expected a whole number >= {minimum} (got {raw!r})")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "").strip().lower() or default
    if raw not in choices:
        raise WorkerSettingError(f"{name}: expected one of {', '.join(choices)} (got {raw!r})")
    return raw
