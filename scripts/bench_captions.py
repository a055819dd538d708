#!/usr/bin/env python3
"""How many VLM calls the caption policy makes, against captioning every candidate frame.

    python scripts/bench_captions.py [--scene-seconds 40]

Builds a clip of six scenes with long static stretches (a lecture-like or CCTV-like
video: still pictures with sensor noise, cut hard from one to the next), runs the real
sampler and the default policy over its 1 fps caption candidates, and prints both counts
and whether every scene got at least one caption. No model is called: the policy decides
before any request is made.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from vidagent.captions.policy import CaptionPolicy, PolicySettings
from vidagent.config import Settings
from vidagent.media.probe import probe
from vidagent.media.sampler import FrameSpec, extract

SCENES = ["smptebars", "testsrc", "rgbtestsrc", "color=c=navy", "yuvtestsrc", "color=c=darkgreen"]


def make_clip(path: Path, scene_s: float) -> None:
    inputs, labels = [], []
    for i, source in enumerate(SCENES):
        options = f"size=640x360:rate=25:duration={scene_s}"
        inputs += ["-f", "lavfi", "-i", f"{source}{':' if '=' in source else '='}{options}"]
        labels.append(f"[{i}:v]noise=alls=12:allf=t,format=yuv420p[v{i}]")
    graph = ";".join(labels) + ";" + "".join(f"[v{i}]" for i in range(len(SCENES)))
    graph += f"concat=n={len(SCENES)}:v=1:a=0[out]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
                    "-c:v", "libx264", "-preset", "veryfast", str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene-seconds", type=float, default=40)
    args = parser.parse_args()
    defaults = Settings()
    policy = CaptionPolicy(PolicySettings(
        min_gap_s=defaults.caption_min_gap_s, max_gap_s=defaults.caption_max_gap_s,
        scene_threshold=defaults.caption_scene_threshold, max_per_minute=defaults.caption_max_per_minute,
    ))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "scenes.mp4"
        make_clip(clip, args.scene_seconds)
        frames = [f for f in extract(clip, probe(clip), [FrameSpec("caption", defaults.caption_fps, 768)], None)]
    made = [(f.t, reason) for f in frames if (reason := policy.decide(f.t, f.signature, set()))]
    scene_of = lambda t: int(t // args.scene_seconds)  # noqa: E731
    covered = {scene_of(t) for t, _ in made}
    print(f"clip: {len(SCENES)} scenes x {args.scene_seconds:g} s, static with noise; "
          f"{len(frames)} caption candidates at {defaults.caption_fps:g} fps")
    print(f"fixed 1 fps: {len(frames)} VLM calls")
    print(f"policy:      {len(made)} VLM calls ({len(frames) / len(made):.0f}x fewer): "
          + ", ".join(f"{t:.0f}s {reason}" for t, reason in made))
    print(f"scenes with a caption: {len(covered)} of {len(SCENES)}")
    sys.exit(0 if len(covered) == len(SCENES) else 1)


if __name__ == "__main__":
    main()
