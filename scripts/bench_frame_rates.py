#!/usr/bin/env python3
"""Every stage at every frame rate: does any rate cost more than 30 fps does?

    python scripts/bench_frame_rates.py [--seconds 40] [--repeat 2] [--only c23976,vfr]

Makes the frame-rate matrix (scripts/make_clips.py), runs `vidagent analyze` on each clip
with detection, transcription, captions (trigger: person) and a summary, offline models,
and prints each clip's pipeline time (report timings.total_s, best of --repeat) and its
ratio to the 30 fps clip's, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_clips import NAMES, make  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def analyse(clip: Path, out: Path) -> dict:
    subprocess.run([sys.executable, "-m", "vidagent", "analyze", str(clip), "--out", str(out), "--config",
                    str(ROOT / "configs" / "offline.yaml"), "--caption", "--summary", "--caption-trigger", "person",
                    "--no-cache", "--progress", "none"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env={**__import__("os").environ, "VIDAGENT_VLM_MAX_TOKENS": "8", "VIDAGENT_SUMMARY_MAX_TOKENS": "8"})
    return json.loads((out / clip.stem / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each clip")
    parser.add_argument("--repeat", type=int, default=2, help="runs per clip; the best is kept")
    parser.add_argument("--only", help=f"comma-separated clips of {','.join(NAMES)} (c30, the reference, is always run)")
    args = parser.parse_args()
    names = NAMES if not args.only else ["c30", *[n for n in args.only.split(",") if n != "c30"]]
    if unknown := sorted(set(names) - set(NAMES)):
        parser.error(f"--only: no clip named {', '.join(unknown)} (choose from {', '.join(NAMES)})")
    best: dict[str, float] = {}
    counts: dict[str, tuple[int, int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {name: make(Path(tmp), name, args.seconds) for name in names}
        for _ in range(args.repeat):  # interleaved, so a busy moment hits every clip alike
            for name, clip in clips.items():
                report = analyse(clip, Path(tmp) / "out")
                best[name] = min(best.get(name, float("inf")), report["timings"]["total_s"])
                counts[name] = (len(report["detections"]), len(report["captions"]),
                                len(report["transcript"]["segments"]))
    print(f"{'clip':>8} {'total s':>8} {'x 30fps':>8}  detections captions segments")
    for name in names:
        frames, captions, segments = counts[name]
        print(f"{name:>8} {best[name]:>8.2f} {best[name] / best['c30']:>8.2f}  {frames:>10} {captions:>8} {segments:>8}")


if __name__ == "__main__":
    main()
