#!/usr/bin/env python3
"""Generate synthetic conversations with known speaker turns, to measure diarization.

    python scripts/make_conversation.py --speakers 3 --minutes 2 --seed 7 --out /tmp/conv
    python scripts/make_conversation.py --count 10 --speakers 2 --minutes 1 --out /tmp/convs/two

Each speaker is an espeak-ng voice of its own (a language or accent, a variant, a pitch and
a speed). Turns last 2-15 s; a share of them starts before the previous one ends (a short
overlap) and a share follows a long silence. Every turn is rendered alone, placed on the
timeline with sox (`pad`) and the turns are mixed with `sox -m`, so each turn's truth is
measured on its own audio: a speaker's speech is where their track is loud, with pauses
shorter than 0.4 s bridged (an RTTM annotator would not split a turn at a comma either).

Writes OUT.wav (16 kHz mono; `--format opus` writes OUT.opus as well), OUT.rttm (the true
turns, one SPEAKER line each) and OUT.json (voices, turns with text, overlap and silence
totals). Needs espeak-ng and sox (apt-get install espeak-ng sox), and ffmpeg for opus.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 16000
# Clearly different voices: language or accent, espeak variant, pitch (0-99), words per minute.
VOICES = [  # chosen so no two are closer than 0.8 (cosine) to the offline encoder
    ("en-us", "m3", 35, 165),
    ("en-gb", "f2", 75, 150),
    ("es", "f1", 65, 160),
    ("en-us", "f5", 95, 170),
    ("pt", "klatt", 60, 150),
    ("it", "m2", 45, 150),
]
WORDS = ("the report says our team moved every pallet before noon and nobody noticed the "
         "missing crate until the manager called again about the contract with the harbour "
         "office where seven trucks waited in the rain while the engineers argued about "
         "budgets schedules and the new warehouse doors which never opened on time").split()
PAUSE_BRIDGE_S = 0.4
FRAME_S = 0.01


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(f"make_conversation: {tool} not found; install it (apt-get install {tool})")


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def speak(text: str, voice: tuple, tmp: Path, name: str) -> Path:
    """One turn, spoken and resampled to 16 kHz mono by sox; leading/trailing silence kept short."""
    language, variant, pitch, speed = voice
    raw, out = tmp / f"{name}.raw.wav", tmp / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", f"{language}+{variant}", "-p", str(pitch), "-s", str(speed),
                    "-w", str(raw), text], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out),
                    "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"],
                   check=True)
    return out


def activity(samples: np.ndarray, offset_s: float) -> list[tuple[float, float]]:
    """Where a turn's own audio is loud (10 ms frames within 35 dB of its peak), pauses
    shorter than PAUSE_BRIDGE_S bridged; times on the conversation's clock."""
    hop = int(RATE * FRAME_S)
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)
    level = 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-9)
    loud = np.flatnonzero(level > level.max() - 35)
    spans: list[list[float]] = []
    for i in loud:
        t = i * FRAME_S
        if spans and t - spans[-1][1] < PAUSE_BRIDGE_S:
            spans[-1][1] = t + FRAME_S
        else:
            spans.append([t, t + FRAME_S])
    return [(round(offset_s + a, 3), round(offset_s + b, 3)) for a, b in spans]


def plan_turns(rng: random.Random, speakers: int, seconds: float, overlap_share: float,
               silence_share: float) -> list[dict]:
    """Who speaks (rounds in which everyone speaks once), roughly how long, and how far
    after the previous turn's end (negative: overlap)."""
    turns, t, last, cycle = [], 0.5, None, []
    while t < seconds - 2:
        if not cycle:  # everyone speaks once per round, in a new order each round
            cycle = rng.sample(range(speakers), speakers)
            if speakers > 1 and cycle[0] == last:
                cycle.reverse()
        who = cycle.pop(0)
        length = rng.uniform(2, 15)
        roll = rng.random()
        gap = -rng.uniform(0.5, 1.5) if roll < overlap_share and turns else (
            rng.uniform(3, 8) if roll < overlap_share + silence_share else rng.uniform(0.2, 1.0))
        turns.append({"speaker": who, "target_s": min(length, seconds - t), "gap_s": gap})
        t += length + max(gap, 0)
        last = who
    return turns


def conversation(out: Path, speakers: int, minutes: float, seed: int, overlap_share: float = 0.15,
                 silence_share: float = 0.1, formats: tuple[str, ...] = ("wav",),
                 voice_names: list[str] | None = None) -> dict:
    """Render one conversation to OUT.wav/.rttm/.json (and .opus); returns the JSON written.
    `voice_names` (`en-us+f5`, ...) picks the voices, so conversations can share one."""
    need("espeak-ng", "sox", *(("ffmpeg",) if "opus" in formats else ()))
    rng = random.Random(seed)
    voices = rng.sample(VOICES, speakers)
    if voice_names:
        voices = [voice_named(name) for name in voice_names]
        speakers = len(voices)
    out.parent.mkdir(parents=True, exist_ok=True)
    truth, placed = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cursor = 0.5
        for n, turn in enumerate(plan_turns(rng, speakers, minutes * 60, overlap_share, silence_share)):
            words = max(4, int(turn["target_s"] * 2.6))
            text = " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."
            wav = speak(text, voices[turn["speaker"]], tmp, f"t{n}")
            samples = read_wav(wav)
            start = max(0.0, cursor + turn["gap_s"]) if n else cursor
            spans = activity(samples, start)
            if not spans:
                continue
            padded = tmp / f"p{n}.wav"
            subprocess.run(["sox", str(wav), str(padded), "pad", f"{start:.3f}"], check=True)
            placed.append(padded)
            truth += [{"speaker": f"spk{turn['speaker'] + 1}", "start": a, "end": b, "text": text, "turn": n}
                      for a, b in spans]
            cursor = start + len(samples) / RATE
        mixed = out.with_suffix(".wav")
        # -v 1 per input: sox -m would otherwise scale every input by 1/N.
        args = ["sox", "-m"] if len(placed) > 1 else ["sox"]
        for p in placed:
            args += (["-v", "1"] if len(placed) > 1 else []) + [str(p)]
        subprocess.run([*args, "-r", str(RATE), "-c", "1", "-b", "16", str(mixed), "gain", "-n", "-3"], check=True)
    if "opus" in formats:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(mixed), "-c:a", "libopus", "-b:a", "24k",
                        str(out.with_suffix(".opus"))], check=True)
    duration = len(read_wav(mixed)) / RATE
    truth.sort(key=lambda r: r["start"])
    meta = {
        "duration_s": round(duration, 3),
        "seed": seed,
        "speakers": [{"id": f"spk{i + 1}", "voice": f"{v[0]}+{v[1]}", "pitch": v[2], "wpm": v[3]}
                     for i, v in enumerate(voices)],
        "turns": truth,
        "overlap_s": round(overlap_seconds(truth), 3),
        "speech_s": round(union_seconds(truth), 3),
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    out.with_suffix(".rttm").write_text("".join(
        f"SPEAKER {out.name} 1 {r['start']:.3f} {r['end'] - r['start']:.3f} <NA> <NA> {r['speaker']} <NA> <NA>\n"
        for r in truth))
    if "wav" not in formats:
        mixed.unlink()
    return meta


def voice_named(name: str) -> tuple:
    for voice in VOICES:
        if f"{voice[0]}+{voice[1]}" == name:
            return voice
    raise ValueError(f"no voice {name!r}; voices: {', '.join(f'{v[0]}+{v[1]}' for v in VOICES)}")


def union_seconds(turns: list[dict]) -> float:
    spans = sorted((t["start"], t["end"]) for t in turns)
    total, end = 0.0, -1.0
    for a, b in spans:
        total += max(0.0, b - max(a, end))
        end = max(end, b)
    return total


def overlap_seconds(turns: list[dict]) -> float:
    edges = sorted([(t["start"], 1) for t in turns] + [(t["end"], -1) for t in turns])
    total, depth, last = 0.0, 0, 0.0
    for at, step in edges:
        if depth >= 2:
            total += at - last
        depth += step
        last = at
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="Output path without extension (with --count: a prefix).")
    parser.add_argument("--speakers", type=int, default=2, choices=range(1, 5), metavar="{1-4}", help="Number of voices (default 2).")
    parser.add_argument("--minutes", type=float, default=1.0, help="Length in minutes, 0.2-10 (default 1).")
    parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1); --count uses seed, seed+1, ...")
    parser.add_argument("--count", type=int, default=1, help="How many conversations (default 1).")
    parser.add_argument("--overlap-share", type=float, default=0.15, help="Share of turns that overlap the previous one (default 0.15).")
    parser.add_argument("--silence-share", type=float, default=0.1, help="Share of turns after a 3-8 s silence (default 0.1).")
    parser.add_argument("--format", default="wav", help="wav, opus or wav,opus (default wav).")
    parser.add_argument("--voices", help="These voices, comma-separated (en-us+f5,pt+klatt): conversations that share a "
                        "voice, for --match-speakers; overrides --speakers.")
    args = parser.parse_args(argv)
    voice_names = [v.strip() for v in args.voices.split(",")] if args.voices else None
    try:
        for name in voice_names or []:
            voice_named(name)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0.2 <= args.minutes <= 10:
        parser.error("--minutes must be between 0.2 and 10")
    formats = tuple(f.strip() for f in args.format.split(","))
    if not set(formats) <= {"wav", "opus"}:
        parser.error("--format takes wav, opus or both")
    for i in range(args.count):
        out = args.out if args.count == 1 else args.out.with_name(f"{args.out.name}-{i + 1:02d}")
        meta = conversation(out, args.speakers, args.minutes, args.seed + i, args.overlap_share,
                            args.silence_share, formats, voice_names)
        print(f"{out}: {meta['duration_s']:.1f}s, {len(meta['speakers'])} speakers, "
              f"{len(meta['turns'])} turns, {meta['overlap_s']:.1f}s overlap")


if __name__ == "__main__":
    main()
