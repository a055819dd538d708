#!/usr/bin/env python3
"""Score speakers against the truth: diarization error rate with pyannote.metrics.

    python scripts/score_diarization.py --reference conv.rttm --hypothesis out/conv/report.json
    python scripts/score_diarization.py --reference conv.json --hypothesis found.rttm --collar 0.25

REFERENCE: an RTTM file or make_conversation.py's JSON. HYPOTHESIS: a vidagent report.json
(its speaker_turns) or an RTTM file. DER counts missed speech, false alarm and speaker
confusion over the reference's speech, with `--collar` seconds around each reference
boundary not scored (0.25 s, the usual collar) and overlapping speech scored.
Needs pyannote.metrics (pip install 'vidagent[dev]').
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def read_turns(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, speaker) from an RTTM file, a make_conversation JSON or a report.json."""
    if path.suffix == ".rttm":
        turns = []
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 8 and parts[0] == "SPEAKER":
                start, length = float(parts[3]), float(parts[4])
                turns.append((start, start + length, parts[7]))
        return turns
    data = json.loads(path.read_text())
    rows = data["speaker_turns"] if "speaker_turns" in data else data["turns"]
    return [(float(r["start"]), float(r["end"]), str(r["speaker"])) for r in rows]


def true_voice(report: dict, speaker_id: str, truth: dict) -> str:
    """The true voice (make_conversation JSON's `voice`) a reported speaker shares the most
    speech with: which person vidagent's "Speaker N" is, whatever order it numbers them in."""
    names = {s["id"]: s["voice"] for s in truth["speakers"]}
    shared: dict[str, float] = {}
    for turn in (t for t in report["speaker_turns"] if t["speaker"] == speaker_id):
        for real in truth["turns"]:
            overlap = min(turn["end"], real["end"]) - max(turn["start"], real["start"])
            if overlap > 0:
                shared[names[real["speaker"]]] = shared.get(names[real["speaker"]], 0.0) + overlap
    return max(shared, key=shared.get) if shared else "?"


def score(reference: list[tuple[float, float, str]], hypothesis: list[tuple[float, float, str]],
          collar: float = 0.25) -> dict[str, float]:
    """DER and its parts (seconds) as pyannote.metrics computes them."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns):
        out = Annotation()
        for i, (start, end, who) in enumerate(turns):
            if end > start:
                out[Segment(start, end), i] = who
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyannote warns about annotations without a uri
        detail = DiarizationErrorRate(collar=collar, skip_overlap=False)(
            annotation(reference), annotation(hypothesis), detailed=True)
    return {
        "der": float(detail["diarization error rate"]),
        "missed_s": float(detail["missed detection"]),
        "false_alarm_s": float(detail["false alarm"]),
        "confusion_s": float(detail["confusion"]),
        "scored_s": float(detail["total"]),
        "reference_speakers": len({t[2] for t in reference}),
        "found_speakers": len({t[2] for t in hypothesis}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--reference", type=Path, required=True, help="Truth: RTTM or make_conversation JSON.")
    parser.add_argument("--hypothesis", type=Path, required=True, help="Found: report.json or RTTM.")
    parser.add_argument("--collar", type=float, default=0.25, help="Seconds not scored around each boundary (default 0.25).")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    args = parser.parse_args(argv)
    for path in (args.reference, args.hypothesis):
        if not path.is_file():
            print(f"score_diarization: {path}: no such file", file=sys.stderr)
            return 2
    result = score(read_turns(args.reference), read_turns(args.hypothesis), args.collar)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"DER {result['der']:.1%} (missed {result['missed_s']:.1f}s, false alarm {result['false_alarm_s']:.1f}s, "
              f"confusion {result['confusion_s']:.1f}s of {result['scored_s']:.1f}s); speakers "
              f"{result['found_speakers']} found, {result['reference_speakers']} true")
    return 0


if __name__ == "__main__":
    sys.exit(main())
