#!/usr/bin/env python3
"""Clips at the frame rates real cameras produce, with speech: the frame-rate matrix.

    python scripts/make_clips.py OUT_DIR [--seconds 40]

Writes c23976.mp4, c25.mp4, c2997.mp4, c30.mp4, c5994.mp4, c120.mp4 (constant rates,
NTSC ones as exact 1001 fractions) and vfr.mp4: 60 fps capture with frames dropped at
irregular moments and a low-light stretch at a third of the rate, timestamps kept, as
phones record. Each has the committed sentences spoken every ~5 s on an AAC track.
tests/test_frame_rates.py runs every stage on each, locally and through `vidagent serve`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speech_timeline import build, every  # noqa: E402

RATES = {"c23976": "24000/1001", "c25": "25", "c2997": "30000/1001", "c30": "30",
         "c5994": "60000/1001", "c120": "120"}
_ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def video_args(name: str, seconds: float) -> list[str]:
    if name == "vfr":
        # Keep ~55% of a 60 fps capture at random-looking moments (ffmpeg's seeded random),
        # and a third of the frames from 15 s to 25 s; variable frame rate out.
        keep = "if(between(t,15,25),lt(random(0),0.33),gt(random(0),0.45))"
        return ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=60:duration={seconds},select='{keep}'",
                *_ENCODE, "-fps_mode", "vfr"]
    return ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={RATES[name]}:duration={seconds}", *_ENCODE]


def make(out_dir: Path, name: str, seconds: float = 40.0, keyframe_s: float | None = None) -> Path:
    """`keyframe_s`: a keyframe at least this often (x264's default is every 250 frames),
    so that segments (vidagent/segments) can be cut that finely."""
    path = out_dir / (f"{name}-k{keyframe_s:g}.mp4" if keyframe_s else f"{name}.mp4")
    if not path.exists():
        video = video_args(name, seconds)
        if keyframe_s:
            video += ["-force_key_frames", f"expr:gte(t,n_forced*{keyframe_s:g})"]
        build(path, every(int(seconds // 5), 5.0, first_s=1.0), seconds, video=video)
    return path


NAMES = [*RATES, "vfr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--keyframe-s", type=float, default=None, help="a keyframe at least this often (seconds)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        print(make(args.out, name, args.seconds, args.keyframe_s))


if __name__ == "__main__":
    main()
