#!/usr/bin/env python3
"""Batches of thousands: peak memory and seconds per video as the batch grows.

    python scripts/bench_batch.py [--sizes 10,100,1000] [--jobs 2]

Runs `vidagent analyze` (local backend, offline models, every default stage and output)
over N copies of a 1-second clip, for each N, and prints the peak resident memory of the
analyze process (GNU time's %M) and wall seconds per video. Flat columns mean memory does
not grow with the number of videos and the index costs O(1) per video.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_clip(path: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1",
                    "-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)


def run(folder: Path, out: Path, jobs: int) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of one analyze over the folder."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "vidagent", "analyze", str(folder),
                           "--out", str(out), "--config", str(ROOT / "configs" / "offline.yaml"), "--no-cache",
                           "--detect-fps", "2", "--jobs", str(jobs), "--progress", "none"],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"analyze failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("/usr/bin/time") is None:
        sys.exit("bench_batch: needs GNU time (apt-get install time)")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'videos':>7} {'s/video':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip)
        for n in sizes:
            folder = Path(tmp) / f"in-{n}"
            folder.mkdir()
            for i in range(n):
                shutil.copy(clip, folder / f"clip-{i:05d}.mp4")
            wall, peak = run(folder, Path(tmp) / f"out-{n}", args.jobs)
            print(f"{n:>7} {wall / n:>8.3f} {peak:>8}", flush=True)
            shutil.rmtree(folder)
            shutil.rmtree(Path(tmp) / f"out-{n}")


if __name__ == "__main__":
    main()
