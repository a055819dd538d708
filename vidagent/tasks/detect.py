"""Object detection jobs: a batch of sampled frames per YOLO job."""

from __future__ import annotations

import base64
from typing import Any

from ..config import Settings
from ..media.probe import MediaInfo
from ..media.sampler import SampledFrame
from ..report.model import DetectedObject, FrameDetections

ENDPOINT = "yolo"


class FrameBatcher:
    """Groups frames into jobs of at most `max_frames` and `max_bytes` of JSON payload."""

    _PER_IMAGE_OVERHEAD = 4  # quotes and comma around each base64 string

    def __init__(self, max_frames: int, max_bytes: int | None = None, reserved_bytes: int = 1024):
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.reserved = reserved_bytes  # model name and settings beside the images
        self._frames: list[SampledFrame] = []
        self._bytes = reserved_bytes

    def add(self, frame: SampledFrame) -> list[list[SampledFrame]]:
        """Add a frame; returns the batches this completed (none, one, or rarely two)."""
        size = payload_bytes(frame)
        if self.max_bytes is not None and self.reserved + size > self.max_bytes:
            raise ValueError(f"one frame ({size} bytes as base64) exceeds the {self.max_bytes}-byte job limit")
        done = []
        if self.max_bytes is not None and self._frames and self._bytes + size > self.max_bytes:
            done.append(self.flush())
        self._frames.append(frame)
        self._bytes += size
        if len(self._frames) >= self.max_frames:
            done.append(self.flush())
        return done

    def flush(self) -> list[SampledFrame]:
        batch, self._frames, self._bytes = self._frames, [], self.reserved
        return batch


def payload_bytes(frame: SampledFrame) -> int:
    return 4 * ((len(frame.jpeg) + 2) // 3) + FrameBatcher._PER_IMAGE_OVERHEAD


def build_job(frames: list[SampledFrame], settings: Settings) -> dict[str, Any]:
    return {
        "images": [base64.b64encode(frame.jpeg).decode("ascii") for frame in frames],
        "model": settings.yolo_model,
        "conf": settings.yolo_conf,
        "iou": settings.yolo_iou,
        "imgsz": settings.detect_size,
        "classes": settings.yolo_classes,
        "max_det": settings.yolo_max_det,
    }


def parse_result(
    output: dict[str, Any], frames: list[SampledFrame], media: MediaInfo
) -> list[FrameDetections]:
    results = output.get("results") or []
    if len(results) != len(frames):
        raise ValueError(f"yolo returned {len(results)} results for {len(frames)} images")
    parsed = []
    for frame, result in zip(frames, results):
        # Boxes come back in the pixels of the JPEG sent; the report uses display pixels.
        sx = media.width / result["width"]
        sy = media.height / result["height"]
        objects = [
            DetectedObject(
                label=d["label"],
                class_id=d["class_id"],
                confidence=round(d["confidence"], 4),
                box=[round(v, 1) for v in _scale(d["box"], sx, sy)],
            )
            for d in result["detections"]
        ]
        parsed.append(FrameDetections(t=round(frame.t, 6), objects=objects))
    return parsed


def _scale(box: list[float], sx: float, sy: float) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
