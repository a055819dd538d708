#!/usr/bin/env python3
"""Benchmark vidagent's one-pass extraction against the floor and the naive approach.

    python scripts/bench_extract.py [VIDEO] [--minutes 10] [--repeat 3]

Without VIDEO it makes a 480p h264 clip of --minutes length (ffmpeg testsrc2 + tone).
In one run, each measured --repeat times (best taken), it times:
  floor     ffmpeg -i VIDEO -f null -          (decode alone, both streams)
  vidagent  detection frames 10 fps @640 + caption frames 1 fps @1024 + 16 kHz audio chunks
  vidagent-every  the same, decoding every frame (no skipping of unpicked non-reference frames)
  naive     three separate ffmpeg runs writing JPEGs and a WAV to disk
and prints the ratios to the floor, then vidagent's peak memory on a 1-minute cut of the
same clip against the whole clip (flat memory means a ratio near 1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import make_clip, timed

ROOT = Path(__file__).resolve().parent.parent


def floor(video: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-f", "null", "-"], check=True)


def naive(video: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = ["ffmpeg", "-v", "error", "-i", str(video)]
        subprocess.run([*base, "-vf", "fps=10,scale=640:-2", "-q:v", "3", f"{tmp}/d_%06d.jpg"], check=True)
        subprocess.run([*base, "-vf", "fps=1,scale=1024:-2", "-q:v", "3", f"{tmp}/c_%06d.jpg"], check=True)
        subprocess.run([*base, "-vn", "-ac", "1", "-ar", "16000", f"{tmp}/audio.wav"], check=True)


VIDAGENT_RUN = """
import json, resource, sys, time
from pathlib import Path
from vidagent.media.probe import probe
from vidagent.media.sampler import FrameSpec, extract
path, skip = Path(sys.argv[1]), sys.argv[2] == "skip"
started = time.perf_counter()
counts = {}
specs = [FrameSpec("detect", 10, 640), FrameSpec("caption", 1, 1024)]
for item in extract(path, probe(path), specs, 60.0, skip_unpicked=skip):
    kind = getattr(item, "kind", "audio")
    counts[kind] = counts.get(kind, 0) + 1
print(json.dumps({"seconds": time.perf_counter() - started, "counts": counts,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def vidagent(video: Path, skip: bool = True) -> dict:
    out = subprocess.run([sys.executable, "-c", VIDAGENT_RUN, str(video), "skip" if skip else "every"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if video is None:
            video = Path(tmp) / f"bench-{args.minutes:g}min-480p.mp4"
            print(f"making {video.name} ...", flush=True)
            make_clip(video, args.minutes)
        one_minute = Path(tmp) / "first-minute.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-t", "60", "-c", "copy",
                        str(one_minute)], check=True)

        results: dict[str, list[float]] = {"floor": [], "vidagent": [], "vidagent-every": [], "naive": []}
        runs = []
        for _ in range(args.repeat):  # interleaved, so drift hits every contender alike
            results["floor"].append(timed(lambda: floor(video)))
            run = vidagent(video)
            runs.append(run)
            results["vidagent"].append(run["seconds"])
            results["vidagent-every"].append(vidagent(video, skip=False)["seconds"])
            results["naive"].append(timed(lambda: naive(video)))
        best = {name: min(times) for name, times in results.items()}
        short = vidagent(one_minute)

    print(f"video: {video.name}  items: {runs[0]['counts']}")
    print(f"{'contender':<15} {'best s':>8} {'x floor':>8}")
    for name in results:
        print(f"{name:<15} {best[name]:8.2f} {best[name] / best['floor']:8.2f}")
    long_rss = max(r["peak_rss_mb"] for r in runs)
    print(f"peak RSS: 1 min {short['peak_rss_mb']:.0f} MB, whole {long_rss:.0f} MB, "
          f"ratio {long_rss / short['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
