#!/usr/bin/env python3
"""Spoken sentences at known times, made with espeak-ng, and their truth beside them.

    python scripts/make_sentences.py                          # tests/data/sentences.opus, as committed
    python scripts/make_sentences.py long.m4a --minutes 10    # long silences, many voices and speeds
    python scripts/make_sentences.py long.m4a --minutes 60 --gaps 5-40 --seed 2

Without --minutes: twenty sentences in one voice, one second apart (the committed
tests/data/sentences.opus, which tests and benchmarks place on longer timelines).
With --minutes: sentences one after another until the recording is that long, each
spoken by another espeak-ng voice (accent, male/female variant, pitch, speed) and
separated by a silence drawn from --gaps. OUT.json lists each sentence's text, start,
end and voice; starts and ends are the speech's own (espeak's padding is trimmed).
Needs ffmpeg and espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
SENTENCES = [
    "The lighthouse keeper climbed the stairs before dawn.",
    "Seven purple elephants are dancing in the kitchen.",
    "Please send the signed contract to the legal team.",
    "A forklift moved the pallets into the warehouse.",
    "The orchestra tuned their violins in silence.",
    "My grandmother grows tomatoes on the balcony.",
    "The train to Edinburgh leaves at nine fifteen.",
    "Bright yellow kites floated above the beach.",
    "Our quarterly revenue grew by twelve percent.",
    "The volcano erupted without any warning.",
    "Children built a snowman in the village square.",
    "The submarine surfaced near the frozen harbour.",
    "Fresh bread is baked every morning at six.",
    "The museum opens a new dinosaur exhibit today.",
    "Thunder rolled across the empty wheat fields.",
    "The chess champion resigned after forty moves.",
    "A red fox crossed the road in the moonlight.",
    "The astronauts repaired the solar panel outside.",
    "Someone left an umbrella on the morning bus.",
    "The bakery sold out of cinnamon rolls again.",
    "The pilot announced a short delay before takeoff.",
    "Farmers harvested the apples before the first frost.",
    "The library will close early on Friday afternoon.",
    "A gentle breeze carried the smell of the ocean.",
    "The engineer checked every bolt on the bridge.",
    "Two dolphins followed the fishing boat home.",
    "The new hospital wing opens next spring.",
    "Heavy snow blocked the mountain pass overnight.",
    "The students painted a mural on the school wall.",
    "Our neighbour plays the trumpet every evening.",
]
# espeak-ng voices (language/accent) and variants (timbre, male and female) shipped with it.
LANGUAGES = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["", "+f2", "+m3", "+f4", "+m7", "+klatt", "+f1", "+m1"]
ONE_VOICE = {"voice": "en", "speed": 150, "pitch": 50}
TRIM = ("silenceremove=start_periods=1:start_threshold=-50dB,areverse,"
        "silenceremove=start_periods=1:start_threshold=-50dB,areverse")


def voice(i: int, rng: random.Random) -> dict:
    """The i-th sentence's voice: accents and variants cycle at coprime periods, so
    neighbours never share one; pitch and speed are drawn."""
    return {"voice": LANGUAGES[i % len(LANGUAGES)] + VARIANTS[i % len(VARIANTS)],
            "speed": rng.randrange(120, 221, 5), "pitch": rng.randrange(20, 81, 5)}


def speak(text: str, how: dict, tmp: Path) -> np.ndarray:
    """16 kHz mono int16 samples of `text`, without espeak's leading and trailing silence."""
    raw = tmp / "raw.wav"
    subprocess.run(["espeak-ng", "-v", how["voice"], "-s", str(how["speed"]), "-p", str(how["pitch"]),
                    "-w", str(raw), text], check=True)
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(raw), "-af", TRIM, "-ar", str(RATE), "-ac", "1",
                          "-f", "s16le", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(pcm, np.int16)


def encode(samples: np.ndarray, out: Path) -> None:
    """Write mono 16 kHz samples in the format `out`'s suffix names (opus, m4a, wav, mp3, ...)."""
    codec = {".opus": ["-c:a", "libopus", "-b:a", "24k"], ".m4a": ["-c:a", "aac", "-b:a", "64k"]}
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "-",
                    *codec.get(out.suffix.lower(), []), str(out)], input=samples.tobytes(), check=True)


def make(out: Path, minutes: float | None, gaps: tuple[float, float], seed: int, first_s: float) -> dict:
    """The recording and its truth (also written to OUT.json)."""
    rng = random.Random(seed)
    pieces, entries, t = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        i = 0
        while True:
            if minutes is None and i == 20:
                break
            how = ONE_VOICE if minutes is None else voice(i, rng)
            gap = 1.0 if minutes is None else rng.uniform(*gaps)
            start = t + (first_s if i == 0 else 0.0)
            text = SENTENCES[i % len(SENTENCES)]
            speech = speak(text, how, Path(tmp))
            end = start + len(speech) / RATE
            if minutes is not None and end > minutes * 60 - 1.0:
                break
            pieces += [np.zeros(round((start - t) * RATE), np.int16), speech]
            entries.append({"text": text, "start": round(start, 3), "end": round(end, 3), **how})
            t = end
            if minutes is not None or i < 19:
                pieces.append(np.zeros(round(gap * RATE), np.int16))
                t += round(gap * RATE) / RATE
            i += 1
    samples = np.concatenate(pieces)
    if minutes is not None:
        samples = np.concatenate([samples, np.zeros(max(0, round(minutes * 60 * RATE) - len(samples)), np.int16)])
        samples = samples[: round(minutes * 60 * RATE)]
    encode(samples, out)
    truth = {"duration_s": round(len(samples) / RATE, 3), "sentences": entries}
    if minutes is None:
        truth = {"gap_s": 1.0, **truth}
    else:
        truth = {"gaps_s": list(gaps), "seed": seed, **truth}
    out.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def _gaps(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO-HI in seconds, like 5-40 (got {text!r})") from None
    if not 0 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO <= HI (got {text!r})")
    return lo, hi


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("out", nargs="?", type=Path, default=ROOT / "tests" / "data" / "sentences.opus",
                   help="the recording to write; its truth goes to OUT.json (default: tests/data/sentences.opus)")
    p.add_argument("--minutes", type=float, help="a long recording this long: many voices, long silences")
    p.add_argument("--gaps", type=_gaps, default=(5.0, 40.0), metavar="LO-HI",
                   help="with --minutes: silences between sentences, in seconds (default 5-40)")
    p.add_argument("--seed", type=int, default=1, help="with --minutes: the draw of voices and silences (default 1)")
    p.add_argument("--first", type=float, default=None, metavar="S",
                   help="silence before the first sentence (default: 0, with --minutes 5)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.minutes is not None and args.minutes <= 0:
        sys.exit("make_sentences: --minutes must be more than 0")
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            sys.exit(f"make_sentences: {tool} not found; install it (apt-get install {tool})")
    first = args.first if args.first is not None else (0.0 if args.minutes is None else 5.0)
    truth = make(args.out, args.minutes, args.gaps, args.seed, first)
    print(f"wrote {args.out} ({truth['duration_s']:.1f} s, {len(truth['sentences'])} sentences) "
          f"and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
