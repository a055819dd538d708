"""Speakers onto the transcript: each word gets the speaker heard most during it, each
segment is split where its words change speaker, and names what overlaps it."""

from __future__ import annotations

from ..report.model import Segment, Speaker, SpeakerTurn, Word
from .timeline import Turn

NEAR_S = 0.5  # a word in no turn (alignment drift) takes a turn this close


def speaker_id(label: int) -> str:
    return str(label + 1)


def label_segments(segments: list[Segment], turns: list[Turn], keep_words: bool) -> list[Segment]:
    out: list[Segment] = []
    for segment in segments:
        if not segment.words:
            who = _most(turns, segment.start, segment.end)
            out.append(segment.model_copy(update={"speaker": who, "overlap": _others(turns, segment, who)}))
            continue
        words = [w.model_copy(update={"speaker": _most(turns, w.start, w.end)}) for w in segment.words]
        for group in _runs(words):
            piece = segment.model_copy(update={
                "start": group[0].start, "end": max(group[-1].end, group[0].start),
                "text": "".join(w.word for w in group).strip(), "words": group if keep_words else None,
                "speaker": group[0].speaker})
            piece.overlap = _others(turns, piece, piece.speaker)
            out.append(piece)
    return out


def _runs(words: list[Word]) -> list[list[Word]]:
    """Consecutive words of one speaker; a word in no turn takes the speaker before it
    (the first ones: the first known), since a word is speech."""
    last = next((w.speaker for w in words if w.speaker), None)
    for word in words:
        if word.speaker is None:
            word.speaker = last
        last = word.speaker
    runs: list[list[Word]] = []
    for word in words:
        if runs and word.speaker == runs[-1][-1].speaker:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def _most(turns: list[Turn], start: float, end: float) -> str | None:
    heard: dict[int, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            heard[turn.speaker] = heard.get(turn.speaker, 0.0) + shared
    if heard:
        return speaker_id(max(heard, key=heard.get))
    near = [(min(abs(start - t.end), abs(t.start - end)), t.speaker) for t in turns
            if t.start - NEAR_S <= end and start <= t.end + NEAR_S]
    return speaker_id(min(near)[1]) if near else None


def _others(turns: list[Turn], segment: Segment, who: str | None) -> list[str]:
    """Speakers other than `who` whose turns overlap someone else's inside the segment."""
    found = set()
    for turn in turns:
        mine = speaker_id(turn.speaker)
        if mine == who or min(segment.end, turn.end) - max(segment.start, turn.start) <= 0:
            continue
        if any(speaker_id(o.speaker) == who and min(o.end, turn.end) - max(o.start, turn.start) > 0 for o in turns):
            found.add(mine)
    return sorted(found, key=int)


def speaker_list(turns: list[Turn], voices: dict | None = None) -> tuple[list[Speaker], list[SpeakerTurn]]:
    """`voices`: speaker -> voice embedding (Diarization.voices), kept in memory on each Speaker."""
    totals: dict[int, list[float]] = {}
    for turn in turns:
        entry = totals.setdefault(turn.speaker, [0.0, 0])
        entry[0] += turn.end - turn.start
        entry[1] += 1
    voices = voices or {}
    speakers = [Speaker(id=speaker_id(k), name=f"Speaker {k + 1}", speech_s=round(v[0], 3), turns=v[1],
                        voice=[float(x) for x in voices[k]] if k in voices else None)
                for k, v in sorted(totals.items())]
    return speakers, [SpeakerTurn(start=t.start, end=t.end, speaker=speaker_id(t.speaker)) for t in turns]
