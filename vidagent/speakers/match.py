"""The same voice across the videos of one batch (`--match-speakers`), said, never silent.

Each video is diarized on its own (timeline.py), so "Speaker 1" of one video and of the next
need not be the same person. With matching on, videos are matched in input order: every
speaker of a video is compared with the voices the batch has heard so far (the mean
embedding of each speaker, kept in memory only), pairs are chosen one to one by the
highest total similarity, and a pair at or above the threshold takes the earlier voice's
name and records where it came from (`Speaker.matched`); every other speaker is a new
voice of the batch and gets the next free "Speaker N". The order of inputs, not the order
in which videos happen to finish, decides the names, so a rerun names them the same.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from ..report.model import Report, SpeakerMatch
from .cluster import unit_rows


@dataclass
class Voice:
    name: str
    video: str
    speaker: str
    vector: np.ndarray


class VoiceBook:
    """The batch's voices, and whose turn it is to be matched."""

    def __init__(self, threshold: float):
        """`threshold`: cosine similarity of two speakers' mean embeddings at or above which they
        are one voice (Settings.match_threshold, measured by scripts/bench_speaker_match.py)."""
        self.threshold = threshold
        self.voices: list[Voice] = []
        self._turn = 0
        self._changed = asyncio.Condition()

    async def wait_turn(self, position: int) -> None:
        """Until every video before `position` (0-based, input order) is matched or done."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._turn >= position)

    async def done(self, position: int) -> None:
        """The video at `position` is matched (or failed, or has no speakers): the next may go."""
        async with self._changed:
            self._turn = max(self._turn, position + 1)
            self._changed.notify_all()

    def match(self, report: Report, video: str) -> None:
        """Names `report`'s speakers after the batch's voices; unmatched ones join the book."""
        mine = [s for s in report.speakers if s.voice]
        pairs = pair_voices([np.asarray(s.voice) for s in mine], [v.vector for v in self.voices], self.threshold)
        renamed: dict[str, str] = {}
        for i, speaker in enumerate(mine):
            if i in pairs:
                voice, similarity = self.voices[pairs[i][0]], pairs[i][1]
                speaker.matched = SpeakerMatch(video=voice.video, speaker=voice.speaker, similarity=round(similarity, 3))
                renamed[speaker.id] = voice.name
            else:
                renamed[speaker.id] = f"Speaker {len(self.voices) + 1}"
                self.voices.append(Voice(renamed[speaker.id], video, speaker.id, np.asarray(speaker.voice)))
        for speaker in report.speakers:
            speaker.name = renamed.get(speaker.id, speaker.name)


def pair_voices(new: list[np.ndarray], known: list[np.ndarray], threshold: float) -> dict[int, tuple[int, float]]:
    """new index -> (known index, similarity): a one-to-one assignment maximising the total
    similarity, keeping pairs at or above `threshold` (two speakers of one video are two
    people, so they never both take one voice)."""
    if not new or not known:
        return {}
    from scipy.optimize import linear_sum_assignment

    similarity = unit_rows(np.stack(new)) @ unit_rows(np.stack(known)).T
    rows, cols = linear_sum_assignment(-similarity)
    return {int(r): (int(c), float(similarity[r, c])) for r, c in zip(rows, cols) if similarity[r, c] >= threshold}


def match_lines(report: Report, video: str) -> list[str]:
    """What a person is told of each match: which earlier speaker this one is taken to be."""
    return [f"{video}: speaker {s.id} is {s.name} of {s.matched.video} (speaker {s.matched.speaker} there, "
            f"voice similarity {s.matched.similarity:.2f})" for s in report.speakers if s.matched]
