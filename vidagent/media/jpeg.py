"""Sampled frames as JPEG: scaled in YUV and encoded straight from the Y/U/V planes.

No RGB round trip (docs/decisions.md, simplejpeg); one swscale context per size and thread.
"""

from __future__ import annotations

import threading

import numpy as np


def scaled_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Scale so the long side is at most `long_side` (never up), keeping the aspect ratio."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_jpeg(frame, long_side: int, rotation: int, quality: int) -> tuple[bytes, list[np.ndarray]]:
    """Scale in YUV, convert to JPEG's full-range BT.601, rotate upright, encode the planes."""
    import simplejpeg

    width, height = scaled_size(frame.width, frame.height, long_side)
    small = _reformatter(frame.width, frame.height, width, height).reformat(
        frame,
        width=width,
        height=height,
        format="yuv420p",
        dst_colorspace="ITU601",
        src_color_range=frame.color_range or "MPEG",
        dst_color_range="JPEG",
        interpolation="BILINEAR",
        threads=1,
    )
    planes = _yuv_planes(small)
    if rotation:
        planes = [np.ascontiguousarray(np.rot90(p, rotation // 90)) for p in planes]
    return simplejpeg.encode_jpeg_yuv_planes(*planes, quality=quality), planes


_reformatters = threading.local()


def _reformatter(src_width: int, src_height: int, width: int, height: int):
    """One swscale context per size change and thread: `frame.reformat()` builds a new one
    for every frame, which cost ~0.2 ms of 0.45 ms per frame (docs/benchmarks.md)."""
    from av.video.reformatter import VideoReformatter

    cache = getattr(_reformatters, "by_size", None)
    if cache is None:
        cache = _reformatters.by_size = {}
    key = (src_width, src_height, width, height)
    if key not in cache:
        cache[key] = VideoReformatter()
    return cache[key]


def _yuv_planes(frame) -> list[np.ndarray]:
    planes = []
    for i, plane in enumerate(frame.planes):
        rows = frame.height if i == 0 else (frame.height + 1) // 2
        cols = frame.width if i == 0 else (frame.width + 1) // 2
        # Rows are padded to line_size; keep only the picture.
        planes.append(np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)[:, :cols])
    return planes
