#!/usr/bin/env python3
"""Make the bundled sample clip: ffmpeg's testsrc2 pattern with espeak-ng speech.

    python scripts/make_sample.py [OUT.mp4] [--seconds 10] [--speech-at 1.5]

Writes OUT.mp4 (default tests/data/sample.mp4) and OUT.json beside it with the spoken
text and when the speech starts and ends, so tests can check transcript words and times.
Needs ffmpeg and espeak-ng (`apt-get install ffmpeg espeak-ng`); tests use the committed
clip and need neither.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

TEXT = (
    "The quick brown fox jumps over the lazy dog. "
    "Seven purple elephants are dancing in the kitchen."
)


def speech_wav(text: str, path: Path) -> float:
    """Speak `text` into a WAV file; return its length in seconds."""
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def make_clip(out: Path, seconds: float, speech_at: float, text: str = TEXT) -> dict:
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            sys.exit(f"make_sample: {tool} not found; install it (apt-get install {tool})")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        speech_s = speech_wav(text, wav)
        if speech_at + speech_s > seconds:
            sys.exit(f"make_sample: {speech_s:.1f}s of speech does not fit in {seconds}s")
        delay_ms = int(speech_at * 1000)
        subprocess.run(
            [
                "ffmpeg", "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
                "-i", str(wav),
                "-filter_complex",
                f"[1:a]adelay={delay_ms}:all=1,apad,atrim=0:{seconds},aresample=44100[a]",
                "-map", "0:v", "-map", "[a]",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "48k", "-ac", "1",
                "-movflags", "+faststart", str(out),
            ],
            check=True,
        )
    truth = {
        "text": text,
        "speech_start_s": speech_at,
        "speech_end_s": round(speech_at + speech_s, 3),
        "duration_s": seconds,
    }
    out.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("tests/data/sample.mp4"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--speech-at", type=float, default=1.5)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(make_clip(args.out, args.seconds, args.speech_at)))


if __name__ == "__main__":
    main()
