#!/usr/bin/env python3
"""How well transcript times match the truth: vidagent's chunked pipeline against
faster-whisper called directly on the whole file (the floor), same model, same VAD.

    python scripts/bench_transcript_times.py [--minutes 10] [--sentences 20] [--model offline:tiny.en]

Builds a file with the committed sentences (tests/data/sentences.opus) spoken at known
times, one about every 30 s with long silences between, then prints for each way how many
sentences appear in exactly one segment that starts within 1 s of the truth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speech_timeline import ROOT, build, every, score  # noqa: E402


def pipeline(path: Path, out: Path, model: str) -> list[tuple[float, float, str]]:
    subprocess.run([sys.executable, "-m", "vidagent", "analyze", str(path), "--out", str(out), "--no-detect",
                    "--whisper-model", model, "--language", "en", "--no-cache", "--format", "json",
                    "--progress", "none"], check=True, cwd=ROOT)
    report = json.loads((out / path.stem / "report.json").read_text())
    return [(s["start"], s["end"], s["text"]) for s in report["transcript"]["segments"]]


def direct(path: Path, model: str):
    """faster-whisper's own call on the whole file: its segments, and the same segments
    started at their first word."""
    from faster_whisper import WhisperModel

    from vidagent.workers.catalog import resolve_whisper

    whisper = WhisperModel(resolve_whisper(model), device="cpu", compute_type="int8")
    segments, _ = whisper.transcribe(str(path), language="en", vad_filter=True, word_timestamps=True)
    segments = list(segments)
    plain = [(s.start, s.end, s.text) for s in segments]
    by_word = [(s.words[0].start if s.words else s.start, s.end, s.text) for s in segments]
    return plain, by_word


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--model", default="offline:tiny.en")
    parser.add_argument("--video", action="store_true", help="an .mp4 with a test-pattern video track, not an .m4a")
    args = parser.parse_args()
    total = args.minutes * 60
    spacing = total / args.sentences
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / ("sentences-long.mp4" if args.video else "sentences-long.m4a")
        truth = build(clip, every(args.sentences, spacing), total, with_video=args.video)
        started = time.perf_counter()
        ours = pipeline(clip, Path(tmp) / "out", args.model)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        plain, by_word = direct(clip, args.model)
        direct_s = time.perf_counter() - started
    print(f"{args.sentences} sentences over {args.minutes:g} min, model {args.model}")
    print(score(ours, truth).line(f"vidagent analyze ({ours_s:.1f} s)"))
    print(score(plain, truth).line(f"faster-whisper direct, segment starts ({direct_s:.1f} s)"))
    print(score(by_word, truth).line("faster-whisper direct, first-word starts"))


if __name__ == "__main__":
    main()
