"""Transcription jobs: one audio chunk per Whisper job, segments moved onto the video clock."""

from __future__ import annotations

import base64
from typing import Any

from ..config import Settings
from ..media.audio import AudioChunk
from ..report.model import Segment, Word

ENDPOINT = "whisper"


def build_job(chunk: AudioChunk, settings: Settings) -> dict[str, Any]:
    return {
        "audio_base64": base64.b64encode(chunk.wav_bytes()).decode("ascii"),
        "model": settings.whisper_model,
        "language": settings.language,
        "word_timestamps": settings.word_timestamps,
        "enable_vad": settings.enable_vad,
    }


def parse_result(output: dict[str, Any], chunk: AudioChunk) -> tuple[list[Segment], str | None, float | None]:
    """Segments with times on the video clock, plus the detected language and its probability."""
    offset = chunk.start
    segments = []
    for raw in output.get("segments") or []:
        if not raw.get("text", "").strip():
            continue
        words = None
        if raw.get("words") is not None:
            words = [
                Word(
                    word=w["word"],
                    start=_at(offset, w["start"], chunk),
                    end=_at(offset, w["end"], chunk),
                    probability=w.get("probability"),
                )
                for w in raw["words"]
            ]
        segments.append(
            Segment(
                start=_at(offset, raw["start"], chunk),
                end=_at(offset, raw["end"], chunk),
                text=raw["text"].strip(),
                words=words,
                avg_logprob=raw.get("avg_logprob"),
                no_speech_prob=raw.get("no_speech_prob"),
            )
        )
    return segments, output.get("detected_language"), output.get("language_probability")


def _at(offset: float, t: float, chunk: AudioChunk) -> float:
    # Whisper can place an end a hair past the audio it was given; keep it inside the chunk.
    return round(offset + min(max(0.0, float(t)), chunk.duration), 3)
