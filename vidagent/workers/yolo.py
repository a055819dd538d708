"""YOLO object detection worker.

Input: a batch of base64 JPEG/PNG images (`images`), or one (`image`, the seed's form),
and the ultralytics predict settings. Output: per image its size and its detections,
with boxes in the pixels of the image that was sent.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import WorkerInputError, parse_input
from .catalog import resolve_yolo

DEFAULT_MODEL = "yolo11m.pt"


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
    results: list[ImageResult]
    timings: dict[str, float]


_models: dict[str, Any] = {}
_lock = threading.Lock()
_predict_lock = threading.Lock()  # an ultralytics model must not predict in two threads at once


def load(name: str | None = None):
    """Load a model once per process (the endpoint calls this at start, not per job)."""
    name = name or default_model()
    with _lock:
        if name not in _models:
            # Keep ultralytics' banners off stdout, which carries vidagent's results.
            os.environ.setdefault("YOLO_VERBOSE", "false")
            from ultralytics import YOLO

            try:
                _models[name] = YOLO(resolve_yolo(name))
            except (FileNotFoundError, LookupError) as exc:
                raise WorkerInputError(f"YOLO model {name!r} not found: {exc}") from None
        return _models[name]


def decode_image(data: str, position: int):
    import cv2
    import numpy as np

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise WorkerInputError(f"image {position}: not valid base64") from None
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise WorkerInputError(f"image {position}: not a decodable image")
    return image


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    job = parse_input(YoloInput, payload)
    model = load(job.model)
    started = time.perf_counter()
    images = [decode_image(data, i) for i, data in enumerate(job.all_images())]
    decoded = time.perf_counter()
    with _predict_lock:
        predicting = time.perf_counter()
        predictions = model.predict(
            images,
            conf=job.conf,
            iou=job.iou,
            imgsz=job.imgsz,
            classes=job.classes,
            max_det=job.max_det,
            verbose=False,
        )
        finished = time.perf_counter()
    results = [_image_result(image, prediction) for image, prediction in zip(images, predictions)]
    return YoloOutput(
        model=job.model,
        device=str(model.device),
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
