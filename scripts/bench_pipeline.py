#!/usr/bin/env python3
"""Benchmark the whole RunPod path: does extraction, upload, inference and merge overlap?

    python scripts/bench_pipeline.py [VIDEO] [--minutes 10] [--yolo-workers 2]
        [--per-image 0.004] [--per-audio-second 0.01]

Starts `vidagent serve` with workers whose time per item is fixed and known
(scripts/bench_handlers/fixed_time.py), runs `vidagent analyze --backend runpod` on a long
clip, and prints the wall time against the ideal bound:
    max(extraction alone, images * per_image / yolo_workers, audio_s * per_audio_second / whisper_workers)
Target: wall <= 1.15 x bound.

Each round times extraction alone (the pipeline's own: frames in the child process,
audio on a thread, no jobs) and then the run, so the pair sees the same machine; it prints
every round's ratio, the best of all rounds and the median round. On one machine the
emulated endpoints share the CPU with the client (on RunPod they run elsewhere), so it
also prints the CPU seconds of both sides and the CPU floor, (client + endpoints) / cores,
which the wall time cannot beat here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import make_clip, timed

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "scripts" / "bench_handlers" / "fixed_time.py"
KEY = "bench-key"
DETECT_FPS = 10


def extraction_only(video: Path) -> dict:
    """The pipeline's extraction with no jobs: frames from the child process, audio on a
    thread, both at once, as analyze_video runs them."""
    code = (
        "import json, sys, threading; from pathlib import Path\n"
        "from vidagent.media.probe import probe; from vidagent.media.sampler import FrameSpec\n"
        "from vidagent.media.soundtrack import extract_audio\n"
        "from vidagent.media.child import extract_frames_in_child\n"
        "p = Path(sys.argv[1]); info = probe(p); n = {'frames': 0, 'audio_s': 0.0}\n"
        "def audio():\n"
        "    for chunk in extract_audio(p, info, 60.0): n['audio_s'] += chunk.duration\n"
        "t = threading.Thread(target=audio); t.start()\n"
        f"for frame in extract_frames_in_child(p, info, [FrameSpec('detect', {DETECT_FPS}, 640)]): n['frames'] += 1\n"
        "t.join(); print(json.dumps(n))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(video)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds used so far by a process and all its descendants (Linux /proc)."""
    parents, cpu = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root_pid:
                return True
            pid = parents.get(pid, 0)
        return False
    return sum(seconds for pid, seconds in cpu.items() if descends(pid))


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_server(args, tmp: Path) -> tuple[subprocess.Popen, str]:
    config = tmp / "serve.yaml"
    config.write_text(json.dumps({"endpoints": {
        "bench-yolo": {"handler": str(HANDLER), "workers": args.yolo_workers,
                       "env": {"BENCH_KIND": "yolo", "BENCH_SECONDS_PER_ITEM": str(args.per_image)}},
        "bench-whisper": {"handler": str(HANDLER), "workers": 1,
                          "env": {"BENCH_KIND": "whisper", "BENCH_SECONDS_PER_ITEM": str(args.per_audio_second)}},
    }}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidagent", "serve", "--config", str(config), "--port", "0", "--api-key", KEY],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    return proc, json.loads(proc.stdout.readline())["base_url"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--yolo-workers", type=int, default=2)
    parser.add_argument("--per-image", type=float, default=0.004)
    parser.add_argument("--per-audio-second", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=5, help="rounds: extraction alone, then the run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = args.video
        if video is None:
            video = tmp / f"bench-{args.minutes:g}min-480p.mp4"
            print(f"making {video.name} ...", flush=True)
            make_clip(video, args.minutes)
        counts = {}
        server, base_url = start_server(args, tmp)
        env = {**os.environ, "RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": base_url,
               "RUNPOD_YOLO_ENDPOINT_ID": "bench-yolo", "RUNPOD_WHISPER_ENDPOINT_ID": "bench-whisper"}
        command = [sys.executable, "-m", "vidagent", "analyze", str(video), "--out", str(tmp / "out"),
                   "--backend", "runpod", "--detect-fps", str(DETECT_FPS), "--progress", "none"]
        rounds = []
        try:
            for _ in range(args.repeat):  # interleaved, so drift hits both alike
                extract_s = timed(lambda: counts.update(extraction_only(video)))
                server_before, client_before = tree_cpu_s(server.pid), children_cpu_s()
                wall = timed(lambda: subprocess.run(command + ["--no-cache"], env=env, check=True,
                                                    stdout=subprocess.DEVNULL))
                report = json.loads((tmp / "out" / video.stem / "report.json").read_text())
                rounds.append({"extract": extract_s, "wall": wall, "pipeline": report["timings"]["total_s"],
                               "server_cpu": tree_cpu_s(server.pid) - server_before,
                               "client_cpu": children_cpu_s() - client_before})
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        usage = json.loads((tmp / "out" / video.stem / "report.json").read_text())["usage"]

    yolo_s = counts["frames"] * args.per_image / args.yolo_workers
    whisper_s = counts["audio_s"] * args.per_audio_second
    cores = os.cpu_count() or 1
    print(f"video {video.name}: {counts['frames']} frames, {counts['audio_s']:.0f} s of audio; "
          f"jobs: yolo {usage['yolo']['jobs']}, whisper {usage['whisper']['jobs']}")
    print(f"work: yolo {yolo_s:.2f} s on {args.yolo_workers} workers, whisper {whisper_s:.2f} s on 1 worker")
    print("wall: the whole `vidagent analyze` process; pipeline: the report's timings.total_s (probe to merge)")
    print("round  extraction  bound   wall  ratio  pipeline  ratio | CPU s: client  endpoints  floor")
    ratios, pipeline_ratios = [], []
    for i, r in enumerate(rounds, start=1):
        bound = max(r["extract"], yolo_s, whisper_s)
        floor = (r["client_cpu"] + r["server_cpu"]) / cores
        ratios.append(r["wall"] / bound)
        pipeline_ratios.append(r["pipeline"] / bound)
        print(f"{i:>5} {r['extract']:>11.2f} {bound:>6.2f} {r['wall']:>6.2f} {ratios[-1]:>6.2f}"
              f" {r['pipeline']:>9.2f} {pipeline_ratios[-1]:>6.2f} |"
              f" {r['client_cpu']:>13.1f} {r['server_cpu']:>10.1f} {floor:>6.2f}")
    print(f"best of {args.repeat} rounds: wall ratio {min(ratios):.2f}, pipeline ratio {min(pipeline_ratios):.2f}; "
          f"median: wall {statistics.median(ratios):.2f}, pipeline {statistics.median(pipeline_ratios):.2f} "
          f"(target <= 1.15)")


if __name__ == "__main__":
    main()
