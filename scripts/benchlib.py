"""Helpers shared by the benchmark scripts (not part of the vidagent package)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def make_clip(path: Path, minutes: float) -> None:
    """A 854x480 30 fps h264 clip with a stereo AAC tone, `minutes` long."""
    seconds = int(minutes * 60)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-g", "60", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "96k", "-ac", "2", str(path)],
        check=True,
    )


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
