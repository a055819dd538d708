"""Transcription jobs: one audio chunk per Whisper job, segments moved onto the video clock.

Segment times are taken from the words, not from Whisper's segments: after a long
silence Whisper often starts a segment many seconds before anyone speaks, and it puts
sentences with a pause between them into one segment. So every job asks for word times,
and each segment is rebuilt to start at its first word and end at its last, split
wherever the speaker pauses for `segment_pause_s` or more. Word times come from Whisper's
attention alignment, which gives a pause to the word before it; each word is trimmed to
the part of its span where the audio is loud (the chunk's samples are at hand), so the
pause shows; a word whose span is silent throughout goes to the sound nearest it on the
side it belongs to. Times are read in the chunk's samples and put on the clock by the
chunk (`time_at`), which knows where long silences were shortened. RunPod's official
worker-faster_whisper returns the words in one list beside its segments
(`word_timestamps`), not in them: they are given back to their segments by time. A worker that returns no words at all keeps Whisper's segment times, and the report
says so.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Settings
from ..media.audio import FRAME_S, AudioChunk, frame_levels_db
from ..report.model import Segment, Word

ENDPOINT = "whisper"
NO_WORDS_WARNING = ("the whisper endpoint returned no word times: segment times are Whisper's own "
                    "and can start early after a silence")


@dataclass(frozen=True)
class Transcribed:
    segments: list[Segment]
    language: str | None
    probability: float | None
    had_words: bool  # False: the worker gave segment times only
    speakers: dict | None = None  # the worker's `diarization` field (workers/diarize.py), if any


def build_job(chunk: AudioChunk, settings: Settings, language: str | None = None) -> dict[str, Any]:
    """`language`: the one detected for this file, when settings name none."""
    job = {
        "audio_base64": base64.b64encode(chunk.wav_bytes()).decode("ascii"),
        "model": settings.whisper_model,
        "language": settings.language or language,
        "word_timestamps": True,  # segment times come from the words (see above)
        "enable_vad": settings.enable_vad,
    }
    if settings.speakers:  # extension fields: RunPod's official worker ignores them
        job["diarize"] = True
        job["diarization"] = {"backend": settings.diarization_backend, "num_speakers": settings.num_speakers,
                              "min_speakers": settings.min_speakers, "max_speakers": settings.max_speakers}
    return job


SPEAKER_FIELDS = ("diarize", "diarization")


def refused_speakers(message: str, payload: dict[str, Any]) -> bool:
    """The worker refused the job for its speaker fields: RunPod's official
    worker-faster_whisper validates input with the SDK's rp_validator, which answers
    "Unexpected input. diarize is not a valid input option." (it has no diarization)."""
    return "diarize" in payload and "diarize is not a valid input" in message


def without_speakers(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in SPEAKER_FIELDS}


def parse_result(output: dict[str, Any], chunk: AudioChunk, settings: Settings,
                 loudness: AudioChunk | None = None) -> Transcribed:
    """Segments with times on the video clock, plus the detected language and its probability.
    `loudness`: audio around the chunk whose levels judge where words are voiced (default:
    the chunk; a segment worker's short chunks pass their whole stretch, as long as a chunk).

    Raises ValueError, KeyError or TypeError for a reply of the wrong shape."""
    raw_segments = output.get("segments") or []
    if not isinstance(raw_segments, list):
        raise ValueError("'segments' is not a list")
    segments: list[Segment] = []
    had_words = True
    voiced = _Voiced(loudness or chunk)
    loose = _words_by_segment(raw_segments, output.get("word_timestamps"))
    for i, raw in enumerate(raw_segments):
        text = str(raw.get("text") or "")
        if not text.strip():
            continue
        words = raw.get("words", loose[i])
        if words is None:
            had_words = False
            segments.append(Segment(start=_at(raw["start"], chunk), end=_at(raw["end"], chunk), text=text.strip(),
                                    avg_logprob=raw.get("avg_logprob"), no_speech_prob=raw.get("no_speech_prob")))
            continue
        spoken = [w for w in words if str(w.get("word", "")).strip()]
        timed = [_timed(Word(word=str(w["word"]), start=_local(w["start"], chunk), end=_local(w["end"], chunk),
                             probability=w.get("probability")), k == 0, chunk, voiced, loudness)
                 for k, w in enumerate(spoken)]
        for group in split_at_pauses(timed, settings.segment_pause_s):
            segments.append(Segment(
                start=group[0].start,
                end=max(group[-1].end, group[0].start),
                text="".join(w.word for w in group).strip(),
                # Kept for the speakers too: the merge splits segments where the speaker changes.
                words=group if settings.word_timestamps or settings.speakers else None,
                avg_logprob=raw.get("avg_logprob"),
                no_speech_prob=raw.get("no_speech_prob"),
            ))
    probability = output.get("language_probability")
    speakers = output.get("diarization")
    if speakers is not None and not isinstance(speakers, dict):
        raise ValueError("'diarization' is not an object")
    return Transcribed(segments, output.get("detected_language"),
                       float(probability) if probability is not None else None, had_words, speakers)


def _words_by_segment(segments: list[dict], words: Any) -> list[list[dict] | None]:
    """A flat word list (the official worker's `word_timestamps`) handed back to the
    segments it came from: each word to the segment its middle falls in, else the nearest."""
    if not isinstance(words, list) or not segments:
        return [None] * len(segments)
    owned: list[list[dict] | None] = [[] for _ in segments]
    for word in words:
        middle = (float(word["start"]) + float(word["end"])) / 2
        best = min(range(len(segments)), key=lambda i: 0.0 if float(segments[i]["start"]) <= middle
                   <= float(segments[i]["end"]) else min(abs(middle - float(segments[i]["start"])),
                                                         abs(middle - float(segments[i]["end"]))))
        owned[best].append(word)
    return owned


def split_at_pauses(words: list[Word], pause_s: float) -> list[list[Word]]:
    """Consecutive words, cut wherever the gap between two of them is at least `pause_s`."""
    groups: list[list[Word]] = []
    for word in words:
        if groups and word.start - groups[-1][-1].end < pause_s:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


_SILENT_FRAMES = round(0.3 / FRAME_S)  # a silence this long inside a word's span ends the word
_NEAR_FRAMES = round(3.0 / FRAME_S)  # how far from a silent word its sound is looked for


class _Voiced:
    """Where a chunk's audio is loud: frames within 40 dB of its loudest, and clearly above
    its quietest. Audio with no clear silence in it (music under the speech) trims nothing.
    Times here are seconds into the chunk's samples."""

    def __init__(self, chunk: AudioChunk):
        levels = frame_levels_db(chunk.samples)
        self.loud = np.zeros(len(levels), bool)
        if len(levels):
            floor, peak = np.percentile(levels, 10), np.percentile(levels, 98)
            if peak - floor >= 15:
                self.loud = levels >= max(floor + 10, peak - 40)
            else:
                self.loud[:] = True

    def trim(self, word: Word, opens: bool = False) -> Word:
        """The word from where its span gets loud to where it first falls silent for
        SILENCE_S (what follows such a silence is the next word, whatever the alignment says).
        A word whose whole span is silent was misplaced: the first of a segment (`opens`)
        early, as Whisper does after a silence, so it starts where the audio next gets loud;
        any other late, so it ends where the sound before it ends (both within 3 s)."""
        first = max(0, int(word.start / FRAME_S))
        last = min(len(self.loud), int(np.ceil(word.end / FRAME_S)))
        loud = np.flatnonzero(self.loud[first:last])
        if not len(loud):
            if opens:
                near = np.flatnonzero(self.loud[last:last + _NEAR_FRAMES])
                at = last + near[0] if len(near) else None
            else:
                near = np.flatnonzero(self.loud[max(0, first - _NEAR_FRAMES):first])
                at = max(0, first - _NEAR_FRAMES) + near[-1] + 1 if len(near) else None
            if at is None:
                return word
            return word.model_copy(update={"start": round(at * FRAME_S, 3), "end": round(at * FRAME_S, 3)})
        gaps = np.flatnonzero(np.diff(loud) > _SILENT_FRAMES)
        last_loud = loud[gaps[0]] if len(gaps) else loud[-1]
        start = round((first + loud[0]) * FRAME_S, 3)
        end = round((first + last_loud + 1) * FRAME_S, 3)
        return word.model_copy(update={"start": max(word.start, start), "end": min(word.end, end)})


def _local(t: Any, chunk: AudioChunk) -> float:
    # Whisper can place an end a hair past the audio it was given; keep it inside the chunk.
    return min(max(0.0, float(t)), chunk.duration)


def _at(t: Any, chunk: AudioChunk) -> float:
    """A time in the chunk's samples, on the video clock (across shortened silences)."""
    return round(chunk.time_at(_local(t, chunk)), 3)


def _timed(word: Word, opens: bool, chunk: AudioChunk, voiced: _Voiced, loudness: AudioChunk | None) -> Word:
    """A word timed in the chunk's samples, trimmed to its voiced part, on the video clock.
    Trimmed in the samples `voiced` was made from: the chunk's own (which may have shortened
    silences), or else `loudness`, a stretch sent whole (no jumps) that starts elsewhere on
    the clock, so the word goes onto the clock first and is trimmed at its offset in there."""
    if loudness is None or loudness is chunk:
        return _on_clock(voiced.trim(word, opens=opens), chunk)
    shift = loudness.start
    on_clock = _on_clock(word, chunk)
    inside = voiced.trim(on_clock.model_copy(update={"start": on_clock.start - shift, "end": on_clock.end - shift}),
                         opens=opens)
    return inside.model_copy(update={"start": round(inside.start + shift, 3), "end": round(inside.end + shift, 3)})


def _on_clock(word: Word, chunk: AudioChunk) -> Word:
    """A word timed in the chunk's samples, on the video clock; it ends at the latest where
    a shortened silence skips time (no word spans the time that was not sent)."""
    start = round(chunk.time_at(word.start), 3)
    end = round(chunk.time_at(min(word.end, chunk.stretch_end(word.start))), 3)
    return word.model_copy(update={"start": start, "end": max(start, end)})
