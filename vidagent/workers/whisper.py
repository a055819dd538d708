"""Faster-Whisper transcription worker.

Input and output follow RunPod's public `worker-faster_whisper` contract, so a user can
point vidagent at that template instead of our image. Added here: `large-v3-turbo` by
name (the default), local model paths, `offline:` models, VAD parameters, and batched
inference (`batch_size`) for long chunks on a GPU.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import tempfile
import threading
import time
import urllib.request
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..timefmt import subtitles
from . import WorkerInputError, parse_input
from .catalog import resolve_whisper

DEFAULT_MODEL = "large-v3-turbo"
TextFormat = Literal["plain_text", "formatted_text", "srt", "vtt"]


def default_model() -> str:
    """What the worker preloads and uses when a job names no model (an image sets this)."""
    return os.environ.get("VIDAGENT_WHISPER_MODEL", DEFAULT_MODEL)


class WhisperInput(BaseModel):
    # Unknown keys are ignored, as the official worker does, so its clients keep working.
    model_config = ConfigDict(extra="ignore")

    audio: str | None = Field(None, description="URL (http/https) or local path of an audio file.")
    audio_base64: str | None = Field(None, description="Base64-encoded audio file (any format).")
    model: str = Field(default_factory=default_model, description="Default: the preloaded model.")
    transcription: TextFormat = "plain_text"
    translate: bool = False
    translation: TextFormat = "plain_text"
    language: str | None = None
    temperature: float = 0.0
    best_of: int = 5
    beam_size: int = 5
    patience: float = 1.0
    length_penalty: float = 1.0
    suppress_tokens: str = "-1"
    initial_prompt: str | None = None
    condition_on_previous_text: bool = True
    temperature_increment_on_fallback: float | None = 0.2
    compression_ratio_threshold: float = 2.4
    logprob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    enable_vad: bool = False
    word_timestamps: bool = False
    # vidagent additions
    vad_parameters: dict[str, Any] | None = None
    batch_size: int | None = Field(None, ge=1, description="Batched inference (GPU); None: sequential.")

    @model_validator(mode="after")
    def _one_audio(self) -> "WhisperInput":
        if (self.audio is None) == (self.audio_base64 is None):
            raise ValueError("give exactly one of 'audio' (URL or path) or 'audio_base64'")
        return self


_models: dict[str, Any] = {}
_lock = threading.Lock()


def device() -> tuple[str, str]:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        return "cuda", "float16"
    return "cpu", "int8"


def load(name: str | None = None):
    name = name or default_model()
    with _lock:
        if name not in _models:
            from faster_whisper import WhisperModel

            where, compute_type = device()
            try:
                _models[name] = WhisperModel(
                    resolve_whisper(name), device=where, compute_type=compute_type
                )
            except (LookupError, ValueError, RuntimeError, OSError) as exc:
                raise WorkerInputError(f"whisper model {name!r} cannot be loaded: {exc}") from None
        return _models[name]


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    job = parse_input(WhisperInput, payload)
    model = load(job.model)
    started = time.perf_counter()
    with _audio_source(job) as audio:
        segments, info = _transcribe(model, job, audio, task="transcribe")
        translation = None
        if job.translate:
            translated, _ = _transcribe(model, job, audio, task="translate")
            translation = format_segments(translated, job.translation)
    result: dict[str, Any] = {
        "segments": [_segment_json(s, job.word_timestamps) for s in segments],
        "detected_language": info.language,
        "language_probability": info.language_probability,
        "transcription": format_segments(segments, job.transcription),
        "translation": translation,
        "device": device()[0],
        "model": job.model,
        "duration": info.duration,
        "timings": {"transcribe_s": time.perf_counter() - started},
    }
    if job.word_timestamps:
        result["word_timestamps"] = [_word_json(w) for s in segments for w in (s.words or [])]
    return result


def _transcribe(model, job: WhisperInput, audio, task: str):
    import numpy as np

    if job.temperature_increment_on_fallback:
        temperature = tuple(
            np.arange(job.temperature, 1.0 + 1e-6, job.temperature_increment_on_fallback)
        )
    else:
        temperature = job.temperature
    options = dict(
        language=job.language,
        task=task,
        beam_size=job.beam_size,
        best_of=job.best_of,
        patience=job.patience,
        length_penalty=job.length_penalty,
        temperature=temperature,
        compression_ratio_threshold=job.compression_ratio_threshold,
        log_prob_threshold=job.logprob_threshold,
        no_speech_threshold=job.no_speech_threshold,
        condition_on_previous_text=job.condition_on_previous_text,
        initial_prompt=job.initial_prompt,
        suppress_tokens=[int(t) for t in job.suppress_tokens.split(",") if t.strip()],
        word_timestamps=job.word_timestamps,
        vad_filter=job.enable_vad,
        vad_parameters=job.vad_parameters,
    )
    if hasattr(audio, "seek"):
        audio.seek(0)
    import av

    try:
        if job.batch_size:
            from faster_whisper import BatchedInferencePipeline

            options.pop("condition_on_previous_text")
            options["vad_filter"] = True  # batched inference segments the audio with VAD
            segments, info = BatchedInferencePipeline(model).transcribe(
                audio, batch_size=job.batch_size, **options
            )
        else:
            segments, info = model.transcribe(audio, **options)
        return list(segments), info  # segments are lazy: decoding happens here
    except av.error.FFmpegError as exc:
        raise WorkerInputError(f"audio cannot be decoded: {exc.strerror or exc}") from None


class _audio_source:
    """The job's audio as something faster-whisper reads: bytes buffer, path or temp file."""

    def __init__(self, job: WhisperInput):
        self.job = job
        self._tmp: str | None = None

    def __enter__(self):
        if self.job.audio_base64 is not None:
            try:
                return io.BytesIO(base64.b64decode(self.job.audio_base64, validate=True))
            except (binascii.Error, ValueError):
                raise WorkerInputError("input field 'audio_base64': not valid base64") from None
        source = self.job.audio
        if source.startswith(("http://", "https://")):
            fd, self._tmp = tempfile.mkstemp(prefix="vidagent-audio-")
            os.close(fd)
            try:
                urllib.request.urlretrieve(source, self._tmp)
            except OSError as exc:
                raise WorkerInputError(f"input field 'audio': download failed ({exc})") from None
            return self._tmp
        if not os.path.exists(source):
            raise WorkerInputError(f"input field 'audio': no such file or URL {source!r}")
        return source

    def __exit__(self, *exc) -> None:
        if self._tmp:
            os.unlink(self._tmp)


def format_segments(segments, fmt: str) -> str:
    if fmt == "plain_text":
        return " ".join(s.text.strip() for s in segments)
    if fmt == "formatted_text":
        return "\n".join(s.text.strip() for s in segments)
    return subtitles([(s.start, s.end, s.text) for s in segments], fmt)


def _segment_json(segment, with_words: bool) -> dict[str, Any]:
    data = {
        "id": segment.id,
        "seek": segment.seek,
        "start": float(segment.start),
        "end": float(segment.end),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }
    if with_words:
        data["words"] = [_word_json(w) for w in (segment.words or [])]
    return data


def _word_json(word) -> dict[str, Any]:
    return {
        "word": word.word,
        "start": float(word.start),
        "end": float(word.end),
        "probability": float(word.probability),
    }
