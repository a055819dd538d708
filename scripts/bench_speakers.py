#!/usr/bin/env python3
"""Diarization quality and cost on generated conversations, offline model.

    python scripts/bench_speakers.py --two 5 --four 5 --minutes 1 [--seed 100] [--work /tmp/speakers]

For each conversation (scripts/make_conversation.py: espeak-ng voices, sox mix, true
turns saved) it runs `vidagent analyze --speakers` (the production path: 60 s chunks,
whisper worker with diarization, one clustering per video) and scores the report's
speaker_turns against the truth with pyannote.metrics (DER, collar 0.25 s, overlap
scored; scripts/score_diarization.py). Cost: on the same audio, the whisper worker's
transcription (faster-whisper, the floor) and the diarization call, each timed in process
CPU seconds, and their ratio. Prints one row per conversation and the totals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from make_conversation import conversation  # noqa: E402
from score_diarization import read_turns, score  # noqa: E402


def analyze(wav: Path, out: Path) -> dict:
    subprocess.run([sys.executable, "-m", "vidagent", "analyze", str(wav), "--out", str(out), "--no-detect",
                    "--config", str(ROOT / "configs/offline.yaml"), "--speakers", "--no-cache", "--format", "json",
                    "--progress", "none"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads((out / wav.stem / "report.json").read_text())


def cpu_costs(wav: Path) -> tuple[float, float]:
    """Process CPU seconds of transcription and of diarization, same audio, same worker."""
    import base64

    from vidagent.workers import diarize, whisper

    with wave.open(str(wav)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    payload = {"audio_base64": base64.b64encode(wav.read_bytes()).decode(), "model": "offline:tiny.en",
               "language": "en", "word_timestamps": True, "enable_vad": True}
    # Warm both models on the first 5 s: model loads are not the stage's cost.
    whisper.load("offline:tiny.en")
    diarize.diarize(samples[:16000 * 5], diarize.DiarizeOptions(), [(0.0, 5.0)])
    started = time.process_time()
    out = whisper.handle(payload)
    transcribe_s = time.process_time() - started
    started = time.process_time()
    diarize.diarize(samples, diarize.DiarizeOptions(), diarize.speech_regions(samples, out["segments"]))
    return transcribe_s, time.process_time() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--two", type=int, default=5, help="Two-speaker conversations (default 5).")
    parser.add_argument("--four", type=int, default=5, help="Four-speaker conversations (default 5).")
    parser.add_argument("--three", type=int, default=0, help="Three-speaker conversations (default 0).")
    parser.add_argument("--minutes", type=float, default=1.0, help="Length of each (default 1).")
    parser.add_argument("--seed", type=int, default=100, help="First seed (default 100).")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vidagent-bench-speakers"), help="Working folder.")
    parser.add_argument("--no-cost", action="store_true", help="Skip the CPU cost measurement.")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows, seed = [], args.seed
    for speakers, count in ((2, args.two), (3, args.three), (4, args.four)):
        for _ in range(count):
            base = args.work / f"conv{speakers}-{seed}"
            conversation(base, speakers, args.minutes, seed)
            report = analyze(base.with_suffix(".wav"), args.work / "out")
            found = [(t["start"], t["end"], t["speaker"]) for t in report["speaker_turns"]]
            result = score(read_turns(base.with_suffix(".json")), found)
            result.update(name=base.name, speakers=speakers)
            if not args.no_cost:
                result["transcribe_cpu_s"], result["diarize_cpu_s"] = cpu_costs(base.with_suffix(".wav"))
            rows.append(result)
            cost = (f"  transcribe {result['transcribe_cpu_s']:.1f}s cpu, diarize {result['diarize_cpu_s']:.1f}s "
                    f"({result['diarize_cpu_s'] / result['transcribe_cpu_s']:.0%})") if not args.no_cost else ""
            print(f"{base.name}: DER {result['der']:.1%}  speakers {result['found_speakers']}/{speakers}"
                  f"  missed {result['missed_s']:.1f}s fa {result['false_alarm_s']:.1f}s conf {result['confusion_s']:.1f}s{cost}",
                  flush=True)
            seed += 1
    for speakers in (2, 3, 4):
        mine = [r for r in rows if r["speakers"] == speakers]
        if mine:
            errors = sum(r["der"] * r["scored_s"] for r in mine)
            print(f"{speakers} speakers: DER {errors / sum(r['scored_s'] for r in mine):.1%} over {len(mine)} "
                  f"(worst {max(r['der'] for r in mine):.1%}), count right {sum(r['found_speakers'] == speakers for r in mine)}/{len(mine)}")
    if rows and not args.no_cost:
        tr, di = sum(r["transcribe_cpu_s"] for r in rows), sum(r["diarize_cpu_s"] for r in rows)
        print(f"cost: diarization {di:.1f}s cpu = {di / tr:.1%} of transcription's {tr:.1f}s cpu")


if __name__ == "__main__":
    main()
