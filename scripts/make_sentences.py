#!/usr/bin/env python3
"""Make tests/data/sentences.opus: twenty short spoken sentences, one after another.

    python scripts/make_sentences.py [OUT.opus]

Each sentence is spoken by espeak-ng and separated from the next by one second of
silence; OUT.json beside it lists each sentence's text, start and end in the file, so a
test can place them anywhere on a longer timeline with known times (tests/test_transcript_times.py,
scripts/bench_transcript_times.py). Needs ffmpeg and espeak-ng; tests use the committed file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

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
]
GAP_S = 1.0
RATE = 16000


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests/data/sentences.opus"
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            sys.exit(f"make_sentences: {tool} not found; install it (apt-get install {tool})")
    entries, t = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, text in enumerate(SENTENCES):
            raw, wav = Path(tmp) / f"{i}.raw.wav", Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True)
            # espeak pads each side with silence: trim it so the times below are the speech's own.
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-af",
                            "silenceremove=start_periods=1:start_threshold=-50dB,areverse,"
                            "silenceremove=start_periods=1:start_threshold=-50dB,areverse",
                            "-ar", str(RATE), "-ac", "1", str(wav)], check=True)
            with wave.open(str(wav)) as w:
                seconds = w.getnframes() / w.getframerate()
            entries.append({"text": text, "start": round(t, 3), "end": round(t + seconds, 3)})
            parts += [wav]
            t += seconds + GAP_S
        listing = Path(tmp) / "list.txt"
        gap = Path(tmp) / "gap.wav"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"anullsrc=r={RATE}:cl=mono",
                        "-t", str(GAP_S), str(gap)], check=True)
        listing.write_text("".join(f"file '{p}'\nfile '{gap}'\n" for p in parts))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                        "-c:a", "libopus", "-b:a", "24k", str(out)], check=True)
    out.with_suffix(".json").write_text(json.dumps({"gap_s": GAP_S, "sentences": entries}, indent=2) + "\n")
    print(f"wrote {out} ({t:.1f} s) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
