"""YOLO object detection worker.

Input: a batch of base64 JPEG/PNG images (`images`), or one (`image`, the seed's form),
and the ultralytics predict settings. Output: per image its size and its detections,
with boxes in the pixels of the image that was sent.

Worker settings (environment, read when a model loads; docs/decisions.md):
  VIDAGENT_YOLO_PRECISION      auto (fp16 on CUDA, fp32 elsewhere) | fp16 | fp32
  VIDAGENT_YOLO_INFER_BATCH    images per forward pass (default 32, the client's yolo_batch)
  VIDAGENT_YOLO_DECODE_THREADS threads decoding a job's images (default: up to 8 cores)
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import WorkerInputError, env_choice, env_int, parse_input
from .catalog import resolve_yolo

DEFAULT_MODEL = "yolo11m.pt"
DEFAULT_INFER_BATCH = 32


@dataclass(frozen=True)
class Options:
    precision: str  # "fp16" or "fp32": what the worker asks ultralytics for
    infer_batch: int
    decode_threads: int


def options(cuda: bool | None = None) -> Options:
    """The worker settings now in the environment. fp16 is asked for only on CUDA under
    `auto`; ultralytics itself runs a CPU model in fp32 whatever it is asked."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    precision = env_choice("VIDAGENT_YOLO_PRECISION", "auto", ("auto", "fp16", "fp32"))
    if precision == "auto":
        precision = "fp16" if cuda else "fp32"
    return Options(
        precision=precision,
        infer_batch=env_int("VIDAGENT_YOLO_INFER_BATCH", DEFAULT_INFER_BATCH, minimum=1),
        decode_threads=env_int("VIDAGENT_YOLO_DECODE_THREADS", min(8, os.cpu_count() or 1), minimum=1),
    )


def default_model() -> str:
    """What the worker preloads and uses when a job names no model (an image sets this)."""
    return os.environ.get("VIDAGENT_YOLO_MODEL", DEFAULT_MODEL)


class YoloInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[str] | None = Field(None, description="Base64-encoded images, one result each.")
    image: str | None = Field(None, description="One base64 image (the single-image form).")
    model: str = Field(default_factory=default_model, description="Default: the preloaded model.")
    conf: float = Field(0.25, ge=0, le=1)
    iou: float = Field(0.7, ge=0, le=1)
    imgsz: int = Field(640, ge=32, le=4096)
    classes: list[int] | None = None
    max_det: int = Field(300, ge=1)

    @model_validator(mode="after")
    def _one_form(self) -> "YoloInput":
        if (self.images is None) == (self.image is None):
            raise ValueError("give exactly one of 'images' (a list) or 'image'")
        if self.images is not None and not self.images:
            raise ValueError("'images' is empty")
        return self

    def all_images(self) -> list[str]:
        return self.images if self.images is not None else [self.image]


class Detection(BaseModel):
    label: str
    class_id: int
    confidence: float
    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the image sent.")


class ImageResult(BaseModel):
    width: int
    height: int
    detections: list[Detection]


class YoloOutput(BaseModel):
    model: str
    device: str
    precision: str = Field(description="fp16 or fp32: what the model ran in.")
    results: list[ImageResult]
    timings: dict[str, float]


_models: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()
_predict_lock = threading.Lock()  # an ultralytics model must not predict in two threads at once
_decoders: tuple[int, ThreadPoolExecutor] | None = None  # (threads, pool)


def load(name: str | None = None):
    """Load a model once per process and precision (the endpoint calls this at start)."""
    name = name or default_model()
    key = (name, options().precision)
    with _lock:
        if key not in _models:
            # Keep ultralytics' banners off stdout, which carries vidagent's results.
            os.environ.setdefault("YOLO_VERBOSE", "false")
            from ultralytics import YOLO

            try:
                _models[key] = YOLO(resolve_yolo(name))
            except (FileNotFoundError, LookupError) as exc:
                raise WorkerInputError(f"YOLO model {name!r} not found: {exc}") from None
        return _models[key]


def decode_image(data: str, position: int):
    """BGR pixels, as ultralytics expects of a numpy image. JPEG goes through simplejpeg
    (libjpeg-turbo), PNG and anything simplejpeg refuses through OpenCV; both release the
    GIL, so a thread pool decodes a batch in parallel."""
    import cv2
    import numpy as np
    import simplejpeg

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise WorkerInputError(f"image {position}: not valid base64") from None
    if raw[:3] == b"\xff\xd8\xff":
        try:
            return simplejpeg.decode_jpeg(raw, colorspace="BGR")
        except ValueError:
            pass  # e.g. CMYK or arithmetic coding: OpenCV's decoder may still read it
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise WorkerInputError(f"image {position}: not a decodable image")
    return image


def decode_all(images: list[str], threads: int) -> list:
    global _decoders
    if threads == 1 or len(images) == 1:
        return [decode_image(data, i) for i, data in enumerate(images)]
    with _lock:
        if _decoders is None or _decoders[0] != threads:
            _decoders = (threads, ThreadPoolExecutor(threads, thread_name_prefix="yolo-decode"))
        pool = _decoders[1]
    # map keeps the order and re-raises the first failure in that order.
    return list(pool.map(decode_image, images, range(len(images))))


def precision_args(precision: str) -> dict[str, Any]:
    """ultralytics' precision argument: `quantize` since 8.4 (it deprecates `half`)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    if "quantize" in DEFAULT_CFG_DICT:
        return {"quantize": 16 if precision == "fp16" else None}
    return {"half": precision == "fp16"}


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    job = parse_input(YoloInput, payload)
    opts = options()
    model = load(job.model)
    started = time.perf_counter()
    images = decode_all(job.all_images(), opts.decode_threads)
    decoded = time.perf_counter()
    settings = dict(
        conf=job.conf, iou=job.iou, imgsz=job.imgsz, classes=job.classes, max_det=job.max_det,
        verbose=False, **precision_args(opts.precision),
    )
    predictions = []
    with _predict_lock:
        predicting = time.perf_counter()
        # ultralytics runs a list of images as one batch: slices bound the batch, hence
        # the activation memory, whatever a client sends in one job.
        for at in range(0, len(images), opts.infer_batch):
            predictions += model.predict(images[at:at + opts.infer_batch], **settings)
        finished = time.perf_counter()
        ran_fp16 = bool(getattr(model.predictor.model, "fp16", False))
    results = [_image_result(image, prediction) for image, prediction in zip(images, predictions)]
    return YoloOutput(
        model=job.model,
        device=str(model.device),
        precision="fp16" if ran_fp16 else "fp32",
        results=results,
        timings={"decode_s": decoded - started, "inference_s": finished - predicting},
    ).model_dump()


def _image_result(image, prediction) -> ImageResult:
    boxes = prediction.boxes
    names = prediction.names
    detections = [
        Detection(
            label=names[int(cls)],
            class_id=int(cls),
            confidence=float(conf),
            box=[float(v) for v in xyxy],
        )
        for xyxy, conf, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())
    ]
    return ImageResult(width=image.shape[1], height=image.shape[0], detections=detections)
