#!/usr/bin/env python3
"""--match-speakers on generated conversations: is one voice one name across a batch?

    python scripts/bench_speaker_match.py [--minutes 0.5] [--seed 300] [--work /tmp/match]

Makes one two-voice conversation for every pair of the generator's voices
(scripts/make_conversation.py: 6 voices, 15 conversations, so every voice is heard in five
of them), analyses them as one batch with `--speakers --match-speakers` through the
production path (vidagent.batch.run_batch, offline models), and scores the names given
against the truth: each speaker of a report is the true voice it shares the most speech
with. Prints every pair of speakers in different videos with their voices' cosine
similarity (same voice or not) and then the verdict: matches right and wrong, and whether
every true voice got one name across the batch.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from make_conversation import VOICES, conversation  # noqa: E402
from score_diarization import true_voice  # noqa: E402


class Recorder:
    """A quiet progress that keeps each speaker's voice (never written to a report)."""

    def __init__(self) -> None:
        from vidagent.cli.progress import QuietProgress

        self.quiet = QuietProgress()
        self.speakers: dict[str, list] = {}

    def __getattr__(self, name):
        return getattr(self.quiet, name)

    def video_finished(self, outcome) -> None:
        if outcome.report is not None:
            self.speakers[outcome.input.stem] = [s.model_copy() for s in outcome.report.speakers]
        if outcome.error:
            print(f"failed: {outcome.error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--minutes", type=float, default=0.5, help="Length of each conversation (default 0.5).")
    parser.add_argument("--seed", type=int, default=300, help="Seed of the first conversation (default 300).")
    parser.add_argument("--pairs", type=int, default=15, help="How many of the 15 voice pairs (default all).")
    parser.add_argument("--threshold", type=float, default=None, help="match_threshold (default: vidagent's).")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vidagent-bench-match"), help="Working folder.")
    args = parser.parse_args(argv)

    from vidagent.batch import run_batch
    from vidagent.config import load_settings

    names = [f"{v[0]}+{v[1]}" for v in VOICES]
    pairs = list(itertools.combinations(names, 2))[: args.pairs]
    files, truths = [], {}
    for n, pair in enumerate(pairs):
        out = args.work / "media" / f"c{n:02d}"
        if not out.with_suffix(".json").exists():
            conversation(out, 2, args.minutes, args.seed + n, formats=("wav",), voice_names=list(pair))
        files.append(out.with_suffix(".wav"))
        truths[out.name] = json.loads(out.with_suffix(".json").read_text())

    overrides = {"out": args.work / "reports", "detect": False, "match_speakers": True, "cache": False,
                 "formats": ["json"]}
    if args.threshold is not None:
        overrides["match_threshold"] = args.threshold
    settings = load_settings(ROOT / "configs" / "offline.yaml", overrides, environ={})
    recorder = Recorder()
    asyncio.run(run_batch(files, settings, recorder))

    heard = []  # (video, speaker, true voice, speaker object)
    for video, speakers in recorder.speakers.items():
        report = json.loads((args.work / "reports" / video / "report.json").read_text())
        for s in speakers:
            heard.append((video, s, true_voice(report, s.id, truths[video])))
    same, other = [], []
    for (va, a, ta), (vb, b, tb) in itertools.combinations(heard, 2):
        if va != vb and a.voice and b.voice:
            similarity = float(np.dot(a.voice, b.voice))
            (same if ta == tb else other).append(similarity)
    print(f"{len(files)} conversations, {len(heard)} speakers, threshold {settings.match_threshold}")
    for video, speakers in recorder.speakers.items():
        if len(speakers) != len(truths[video]["speakers"]):
            voices = "+".join(s["voice"] for s in truths[video]["speakers"])
            print(f"  {video} ({voices}): {len(speakers)} speaker(s) heard")
    if same:
        print(f"same voice, other video: {len(same)} pairs, similarity min {min(same):.3f} median {np.median(same):.3f}")
    if other:
        print(f"different voices:        {len(other)} pairs, similarity max {max(other):.3f} median {np.median(other):.3f}")
    right = wrong = 0
    for video, s, truth in heard:
        if s.matched:
            earlier = next(t for v, x, t in heard if v == Path(s.matched.video).stem and x.id == s.matched.speaker)
            right, wrong = right + (earlier == truth), wrong + (earlier != truth)
    named = {}
    for _, s, truth in heard:
        named.setdefault(truth, set()).add(s.name)
    split = {truth: sorted(n) for truth, n in named.items() if len(n) > 1}
    shared_names = [n for n in {s.name for _, s, _ in heard} if len({t for _, x, t in heard if x.name == n}) > 1]
    print(f"matches: {right} right, {wrong} wrong (of {len(heard) - len(named)} possible)")
    print(f"true voices with one name across the batch: {len(named) - len(split)} of {len(named)}"
          + (f"; split: {split}" if split else "") + (f"; names on two voices: {shared_names}" if shared_names else ""))


if __name__ == "__main__":
    main()
