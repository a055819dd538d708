#!/usr/bin/env python3
"""How well transcript times and words match the truth: `vidagent analyze` (chunked,
the production path) against faster-whisper called directly on the whole file (the
floor), same model, same VAD, in the same run.

    python scripts/bench_transcript_times.py                      # 10 min, long silences, many voices
    python scripts/bench_transcript_times.py --minutes 60
    python scripts/bench_transcript_times.py --even --sentences 20   # the committed sentences, one every ~30 s
    python scripts/bench_transcript_times.py --video              # an .mp4 with a video track, not an .m4a

By default the recording is made by scripts/make_sentences.py: sentences spoken by
different espeak-ng voices at different speeds and pitches, with silences drawn from
--gaps between them. For each way it prints how many sentences appear in exactly one
segment that starts within --tolerance of the truth, the worst start error, the word
error rate against the truth, and the wall time as a ratio to the direct call.
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
import make_sentences  # noqa: E402
from speech_timeline import ROOT, Spoken, build, every, score, word_error_rate  # noqa: E402


def pipeline(path: Path, out: Path, model: str, chunk_s: float | None = None) -> list[tuple[float, float, str]]:
    chunk = ["--audio-chunk", str(chunk_s)] if chunk_s else []
    subprocess.run([sys.executable, "-m", "vidagent", "analyze", str(path), "--out", str(out), "--no-detect",
                    "--whisper-model", model, "--language", "en", "--no-cache", "--format", "json",
                    "--progress", "none", *chunk], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    report = json.loads((out / path.stem / "report.json").read_text())
    return [(s["start"], s["end"], s["text"]) for s in report["transcript"]["segments"]]


def direct(path: Path, model: str) -> list[tuple[float, float, str]]:
    """faster-whisper's own call on the whole file, VAD on, each segment started at its
    first word (its best start; its segment starts are earlier still after a silence)."""
    from faster_whisper import WhisperModel

    from vidagent.workers.catalog import resolve_whisper

    whisper = WhisperModel(resolve_whisper(model), device="cpu", compute_type="int8")
    segments, _ = whisper.transcribe(str(path), language="en", vad_filter=True, word_timestamps=True)
    return [(s.words[0].start if s.words else s.start, s.end, s.text) for s in segments]


def recording(args, folder: Path) -> tuple[Path, list[Spoken]]:
    clip = folder / ("sentences-long.mp4" if args.video else "sentences-long.m4a")
    if args.even:
        total = args.minutes * 60
        return clip, build(clip, every(args.sentences, total / args.sentences), total, with_video=args.video)
    audio = folder / "spoken.wav"
    made = make_sentences.make(audio, args.minutes, args.gaps, args.seed, first_s=5.0)
    video = (["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=5:duration={made['duration_s']}",
              "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"] if args.video else [])
    subprocess.run(["ffmpeg", "-v", "error", "-y", *video[:6], "-i", str(audio), *video[6:], "-c:a", "aac",
                    "-b:a", "64k", "-shortest", str(clip)], check=True)
    return clip, [Spoken(s["text"], s["start"], s["end"]) for s in made["sentences"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the recording (default 10)")
    parser.add_argument("--gaps", type=make_sentences._gaps, default=(5.0, 40.0), metavar="LO-HI",
                        help="silences between sentences in seconds (default 5-40)")
    parser.add_argument("--seed", type=int, default=1, help="the draw of voices and silences (default 1)")
    parser.add_argument("--even", action="store_true",
                        help="instead: the committed one-voice sentences, evenly spread (--sentences of them)")
    parser.add_argument("--sentences", type=int, default=20, help="with --even: how many (default 20)")
    parser.add_argument("--model", default="offline:tiny.en", help="Whisper model (default offline:tiny.en)")
    parser.add_argument("--tolerance", type=float, default=1.0, help="a start counts within this many seconds")
    parser.add_argument("--video", action="store_true", help="an .mp4 with a test-pattern video track, not an .m4a")
    parser.add_argument("--audio-chunk", type=float, help="vidagent's audio_chunk_s (default: the setting's)")
    parser.add_argument("--skip-direct", action="store_true", help="only vidagent (no floor, no ratio)")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be more than 0")
    with tempfile.TemporaryDirectory() as tmp:
        clip, truth = recording(args, Path(tmp))
        started = time.perf_counter()
        ours = pipeline(clip, Path(tmp) / "out", args.model, args.audio_chunk)
        ours_s = time.perf_counter() - started
        if not args.skip_direct:
            started = time.perf_counter()
            floor = direct(clip, args.model)
            floor_s = time.perf_counter() - started
    print(f"{len(truth)} sentences over {args.minutes:g} min, model {args.model}"
          + ("" if args.even else f", silences {args.gaps[0]:g}-{args.gaps[1]:g} s, seed {args.seed}"))
    print(f"| way | starts within {args.tolerance:g} s | worst start error | in one segment, heard "
          "| word error vs truth | wall s | × direct |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = [("vidagent analyze", ours, ours_s)]
    if not args.skip_direct:
        rows.append(("faster-whisper direct (first-word starts)", floor, floor_s))
    for name, segments, seconds in rows:
        found = score(segments, truth, args.tolerance)
        ratio = f"{seconds / floor_s:.2f}" if not args.skip_direct else "—"
        print(f"| {name} | {found.starts_within}/{found.sentences} | {found.worst_start_s:.2f} s | "
              f"{found.found_once}/{found.sentences} | {word_error_rate(segments, truth):.1%} | {seconds:.1f} | "
              f"{ratio} |")


if __name__ == "__main__":
    main()
