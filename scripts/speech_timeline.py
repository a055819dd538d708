"""Speech at known times: the committed sentences (tests/data/sentences.opus) placed on a
longer timeline, and a score of a transcript against it.

Shared by scripts/bench_transcript_times.py and tests/test_transcript_times.py (which puts
this folder on its path): one definition of the material and of "found".
"""

from __future__ import annotations

import json
import re
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ROOT / "tests" / "data" / "sentences.opus"
RATE = 16000


@dataclass(frozen=True)
class Spoken:
    text: str
    start: float
    end: float


def _decoded() -> np.ndarray:
    with av.open(str(SENTENCES)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        parts = [out.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                 for out in resampler.resample(frame)]
    return np.concatenate(parts)


def build(out: Path, starts: list[float], total_s: float, with_video: bool = False,
          video: list[str] | None = None) -> list[Spoken]:
    """Sentence i spoken at starts[i] (seconds) in a file of total_s seconds; its truth.
    `video`: ffmpeg arguments for a video input and its encoding (default: a small test
    pattern when `with_video`)."""
    listing = json.loads(SENTENCES.with_suffix(".json").read_text())["sentences"]
    audio = _decoded()
    timeline = np.zeros(int(total_s * RATE), np.int16)
    truth = []
    for entry, at in zip(listing, starts):
        piece = audio[int(entry["start"] * RATE):int(entry["end"] * RATE)]
        begin = int(at * RATE)
        timeline[begin:begin + len(piece)] = piece[: len(timeline) - begin]
        truth.append(Spoken(entry["text"], round(at, 3), round(at + len(piece) / RATE, 3)))
    wav = out.with_suffix(".wav")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(timeline.tobytes())
    if video is None and with_video:
        video = ["-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=5:duration={total_s}",
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    inputs, encoding = _split_inputs(video or [])
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-i", str(wav), *encoding, "-c:a", "aac",
                    "-b:a", "64k", "-shortest", str(out)], check=True)
    wav.unlink()
    return truth


def every(n: int, spacing_s: float, first_s: float = 3.0) -> list[float]:
    """n starts about `spacing_s` apart, nudged off any regular grid (chunk lengths)."""
    return [first_s + spacing_s * i + (i * 7 % 11) * 0.37 for i in range(n)]


def _split_inputs(args: list[str]) -> tuple[list[str], list[str]]:
    """ffmpeg arguments up to the last `-i X` (the inputs), and the rest (the encoding)."""
    last = max((i for i, a in enumerate(args) if a == "-i"), default=-2)
    return args[: last + 2], args[last + 2:]


def back_to_back(n: int, pause_s: float, first_s: float = 2.0) -> list[float]:
    """Starts of n sentences spoken one after another with `pause_s` between them."""
    listing = json.loads(SENTENCES.with_suffix(".json").read_text())["sentences"][:n]
    starts, t = [], first_s
    for entry in listing:
        starts.append(round(t, 3))
        t += entry["end"] - entry["start"] + pause_s
    return starts


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@dataclass
class Score:
    sentences: int
    found_once: int  # in exactly one segment
    within: int  # found once, and that segment starts within `tolerance_s` of the truth
    worst_error_s: float
    tolerance_s: float
    starts_within: int = 0  # the sentence's first segment is its own and starts within `tolerance_s`
    worst_start_s: float = 0.0  # of those first segments (inf: a sentence had none of its own)

    def line(self, name: str) -> str:
        return (f"{name}: {self.within}/{self.sentences} sentences within {self.tolerance_s:g} s "
                f"(found once: {self.found_once}; worst start error {self.worst_error_s:.2f} s)")


def score(segments: list[tuple[float, float, str]], truth: list[Spoken], tolerance_s: float = 1.0) -> Score:
    """A sentence is found once when exactly one segment overlaps the time it is spoken,
    that segment overlaps no other sentence, and it holds at least a third of the
    sentence's words (a small model mishears some; the times are what is scored).
    Its start is judged on the first segment that overlaps it, which must overlap no
    earlier sentence (a sentence Whisper splits in two still has one start)."""
    found_once = within = starts = 0
    worst = worst_start = 0.0
    for k, spoken in enumerate(truth):
        hits = sorted(seg for seg in segments if seg[0] < spoken.end and seg[1] > spoken.start)
        if hits and not any(hits[0][0] < earlier.end for earlier in truth[:k]):
            error = abs(hits[0][0] - spoken.start)
            worst_start = max(worst_start, error)
            starts += error <= tolerance_s
        else:
            worst_start = float("inf")
        ok = len(hits) == 1 and sum(hits[0][0] < other.end and hits[0][1] > other.start for other in truth) == 1
        if ok and len(words(spoken.text) & words(hits[0][2])) >= len(words(spoken.text)) / 3:
            found_once += 1
            error = abs(hits[0][0] - spoken.start)
            worst = max(worst, error)
            within += error <= tolerance_s
        else:
            worst = float("inf")
    return Score(len(truth), found_once, within, worst, tolerance_s, starts, worst_start)


def _sequence(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def word_error_rate(segments: list[tuple[float, float, str]], truth: list[Spoken]) -> float:
    """Word error rate of the whole transcript against the whole truth, in time order:
    (substitutions + deletions + insertions) / words of the truth, case and punctuation
    ignored."""
    said = [w for spoken in truth for w in _sequence(spoken.text)]
    heard = [w for seg in sorted(segments) for w in _sequence(seg[2])]
    previous = list(range(len(heard) + 1))
    for i, want in enumerate(said, 1):
        current = [i] + [0] * len(heard)
        for j, got in enumerate(heard, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (want != got))
        previous = current
    return previous[-1] / max(1, len(said))
