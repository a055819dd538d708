#!/usr/bin/env python3
"""Benchmark the report page's proxy (`--html-video proxy`) against ffmpeg doing the same.

    python scripts/bench_proxy.py [VIDEO] [--minutes 1] [--repeat 1]

Without VIDEO it makes a 480p h264 clip of --minutes length (ffmpeg testsrc2 + tone).
In one run, each measured --repeat times (best taken), it times:
  floor     ffmpeg: scale to 360 px tall, libx264 veryfast crf 28, keyframe every 2 s, AAC 96k
  vidagent  vidagent.media.proxy.write_proxy (PyAV, the same encoder settings)
and prints seconds, the ratio to the floor and the ratio to the video's duration.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchlib import make_clip, timed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def floor(video: Path, out: Path, fps: float) -> None:
    import subprocess

    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vf", "scale=-2:'min(360,ih)'", "-c:v", "libx264",
         "-preset", "veryfast", "-crf", "28", "-g", str(round(2 * fps)), "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", str(out)],
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, help="a video to encode (default: a made clip)")
    parser.add_argument("--minutes", type=float, default=1.0, help="length of the made clip (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best taken (default 1)")
    args = parser.parse_args(argv)

    from vidagent.media.probe import probe
    from vidagent.media.proxy import write_proxy

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if video is None:
            video = Path(tmp) / "clip.mp4"
            make_clip(video, args.minutes)
        media = probe(video)
        runs = {
            "floor": lambda: floor(video, Path(tmp) / "floor.mp4", media.fps or 30.0),
            "vidagent": lambda: write_proxy(video, media, Path(tmp) / "proxy.mp4"),
        }
        best = {name: min(timed(run) for _ in range(max(1, args.repeat))) for name, run in runs.items()}
        print(f"{video.name}: {media.width}x{media.height} {media.video_codec}, {media.duration_s:.1f} s")
        for name, seconds in best.items():
            size = (Path(tmp) / ("floor.mp4" if name == "floor" else "proxy.mp4")).stat().st_size
            print(f"  {name:<9} {seconds:7.2f} s  x{seconds / best['floor']:.2f} of floor  "
                  f"{seconds / media.duration_s:.3f} s per video second  {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
