"""Which extra installs each optional library, and the one line that says so.

A light install (`pip install .` in a clone of the repository: the package is not on
PyPI) holds the client only. The models, `vidagent serve` and the PostgreSQL index each
need an extra (pyproject.toml's optional-dependencies). This table is the one place that
knows which: a stage that would import a missing library stops before anything runs with
MissingExtra, one line naming the extra and the command that installs it, never a
ModuleNotFoundError traceback.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import metadata
from urllib.parse import unquote, urlsplit

from .errors import ConfigError

# feature -> (who needs it, the extra to install, the top-level modules it imports).
# The three model stages point at `local` (all three models), as the README installs them.
FEATURES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "yolo": ("YOLO", "local", ("torch", "ultralytics", "cv2")),
    "whisper": ("Whisper", "local", ("faster_whisper", "ctranslate2")),
    "vlm": ("The local VLM", "local", ("torch", "transformers", "tokenizers", "torchvision", "PIL")),
    "serve": ("vidagent serve", "serve", ("runpod", "aiohttp")),
    "store": ("The object store", "store", ("boto3", "botocore")),
    "postgres": ("A postgresql:// index", "postgres", ("psycopg",)),
}
# The segment worker runs both models in one process.
FEATURES["segment"] = ("The local segment worker", "local", FEATURES["yolo"][2] + FEATURES["whisper"][2])


class MissingExtra(ConfigError):
    """A library that an extra installs is not installed: nothing was run."""


def missing(feature: str) -> str | None:
    """The first module `feature` needs that cannot be imported here, or None."""
    for module in FEATURES[feature][2]:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def require(feature: str) -> None:
    """Raise MissingExtra when `feature` (a key of FEATURES)
    cannot run on this install. Looks the modules up without importing them."""
    module = missing(feature)
    if module is not None:
        raise _error(feature, module)


def from_import_error(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The MissingExtra for an import that failed, when an extra provides that module."""
    top = (exc.name or "").split(".")[0]
    for feature, (_, _, modules) in FEATURES.items():
        if top in modules:
            return _error(feature, top)
    return None


def install_command(extra: str) -> str:
    """The pip command that adds `extra` to this install: from the folder (or wheel) it was
    installed from, when pip recorded one, else from a clone of the repository."""
    try:
        recorded = json.loads(metadata.distribution("vidagent").read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError):
        recorded = None
    if recorded and str(recorded.get("url", "")).startswith("file://"):
        source = unquote(urlsplit(recorded["url"]).path)
        editable = "-e " if recorded.get("dir_info", {}).get("editable") else ""
        return f"pip install {editable}'{source}[{extra}]'"
    return f"pip install '.[{extra}]' in a clone of the vidagent repository (it is not on PyPI)"


def _error(feature: str, module: str) -> MissingExtra:
    who, extra, _ = FEATURES[feature]
    return MissingExtra(f"{who} needs the {extra} extra: {install_command(extra)} ({module} is not installed)")
