"""Faster-Whisper transcription worker.

Input and output follow RunPod's public `worker-faster_whisper` contract, so a user can
point vidagent at that template instead of our image. Added here: `large-v3-turbo` by
name (the default; `turbo`, the official worker's name, is the same model), local model
paths, `offline:` models, VAD parameters, batched inference (`batch_size`) and a pinned
decode length (`max_new_tokens`, `without_timestamps`).

Worker settings (environment, read when a model loads or a job starts; docs/decisions.md):
  VIDAGENT_WHISPER_COMPUTE_TYPE  auto (float16 on CUDA, int8 on CPU) or a CTranslate2
                                 type; one the device cannot run falls back to auto's
  VIDAGENT_WHISPER_BATCH_SIZE    auto (16 on CUDA; on CPU 1 with VAD, else 0) or a number;
                                 0 = sequential. Used when a job gives no `batch_size`
  VIDAGENT_WHISPER_BATCH_MIN_S   audio shorter than this stays sequential (default 30:
                                 one 30 s window has nothing to batch)
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
from . import WorkerInputError, WorkerSettingError, env_choice, env_int, parse_input
from .catalog import canonical_whisper, resolve_whisper
from .diarize import DiarizeOptions

DEFAULT_MODEL = "large-v3-turbo"
DEFAULT_GPU_BATCH = 16
DEFAULT_BATCH_MIN_S = 30
WINDOW_S = 30  # Whisper's window: batched inference decodes windows of at most this long
SAMPLE_RATE = 16000
# CTranslate2's compute types (its docs' "quantization" page); which ones a device runs
# is asked of it at load time.
COMPUTE_TYPES = ("auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
                 "float16", "bfloat16", "float32")
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
    batch_size: int | None = Field(
        None, ge=0, description="Windows decoded at once; 0: sequential; None: the worker's default."
    )
    max_new_tokens: int | None = Field(None, ge=1, description="Most tokens per 30 s window.")
    without_timestamps: bool | None = Field(
        None, description="Text tokens only; None: faster-whisper's default for the mode."
    )
    diarize: bool = Field(False, description="Add speaker evidence (`diarization` in the output; workers/diarize.py).")
    diarization: DiarizeOptions = Field(default_factory=DiarizeOptions)

    @model_validator(mode="after")
    def _one_audio(self) -> "WhisperInput":
        if (self.audio is None) == (self.audio_base64 is None):
            raise ValueError("give exactly one of 'audio' (URL or path) or 'audio_base64'")
        return self


_models: dict[str, Any] = {}
_lock = threading.Lock()


def device() -> tuple[str, str]:
    """Where the model runs and in what: VIDAGENT_WHISPER_COMPUTE_TYPE if the device runs
    it, else float16 on CUDA and int8 on CPU."""
    import ctranslate2

    where = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    fallback = "float16" if where == "cuda" else "int8"
    wanted = env_choice("VIDAGENT_WHISPER_COMPUTE_TYPE", "auto", COMPUTE_TYPES)
    if wanted == "auto" or wanted not in ctranslate2.get_supported_compute_types(where):
        return where, fallback
    return where, wanted


def default_batch_size(where: str, vad: bool) -> int:
    """auto: 16 windows at once on CUDA. On a CPU one at a time, but with VAD through the
    batched pipeline all the same (a batch of 1): its windows are cut where VAD hears a
    pause, so no sentence straddles two windows (sequential decoding skipped such
    sentences), and no window is conditioned on the text before it, where small models
    loop. Better words and every start in place on long sparse recordings
    (docs/benchmarks.md, transcript times). Without VAD it would cut at fixed 30 s, so
    sequential decoding, which moves its windows to the last word heard, stays."""
    raw = os.environ.get("VIDAGENT_WHISPER_BATCH_SIZE", "").strip().lower()
    if raw in ("", "auto"):
        return DEFAULT_GPU_BATCH if where == "cuda" else 1 if vad else 0
    try:
        return env_int("VIDAGENT_WHISPER_BATCH_SIZE", 0, minimum=0)
    except WorkerSettingError:
        raise WorkerSettingError(
            f"VIDAGENT_WHISPER_BATCH_SIZE: expected auto or a whole number >= 0 (got {raw!r})"
        ) from None


def batch_size_for(job: WhisperInput, duration_s: float, where: str) -> int:
    """Windows decoded at once for this job; 0 is sequential."""
    if job.batch_size is not None:
        return job.batch_size
    if duration_s < env_int("VIDAGENT_WHISPER_BATCH_MIN_S", DEFAULT_BATCH_MIN_S):
        return 0
    return default_batch_size(where, job.enable_vad)


def load(name: str | None = None):
    name = canonical_whisper(name or default_model())
    where, compute_type = device()
    key = (name, compute_type)
    with _lock:
        if key not in _models:
            from faster_whisper import WhisperModel

            try:
                _models[key] = WhisperModel(
                    resolve_whisper(name), device=where, compute_type=compute_type
                )
            except (LookupError, ValueError, RuntimeError, OSError) as exc:
                raise WorkerInputError(f"whisper model {name!r} cannot be loaded: {exc}") from None
        return _models[key]


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    job = parse_input(WhisperInput, payload)
    model = load(job.model)
    where, compute_type = device()
    started = time.perf_counter()
    with _audio_source(job) as source:
        audio = _decode(source)
    batch = batch_size_for(job, len(audio) / SAMPLE_RATE, where)
    segments, info = _transcribe(model, job, audio, "transcribe", batch)
    translation = None
    if job.translate:
        translated, _ = _transcribe(model, job, audio, "translate", batch)
        translation = format_segments(translated, job.translation)
    result: dict[str, Any] = {
        "segments": [_segment_json(s, job.word_timestamps) for s in segments],
        "detected_language": info.language,
        "language_probability": info.language_probability,
        "transcription": format_segments(segments, job.transcription),
        "translation": translation,
        "device": where,
        "compute_type": compute_type,
        "batch_size": batch,
        "model": job.model,
        "duration": info.duration,
        "timings": {"transcribe_s": time.perf_counter() - started},
    }
    if job.word_timestamps:
        result["word_timestamps"] = [_word_json(w) for s in segments for w in (s.words or [])]
    if job.diarize:
        result["diarization"] = _speakers(job, audio, result["segments"], result["timings"])
    return result


def _speakers(job: WhisperInput, audio, segments: list[dict[str, Any]], timings: dict[str, float]) -> dict[str, Any]:
    from .diarize import diarize, speech_regions

    started = time.perf_counter()
    try:
        found = diarize(audio, job.diarization, speech_regions(audio, segments))
    except Exception as exc:  # the transcript is done: it goes back, with why speakers did not
        found = {"error": str(exc) if isinstance(exc, WorkerInputError) else f"{type(exc).__name__}: {exc}"}
    timings["diarize_s"] = time.perf_counter() - started
    return found


def _decode(source):
    """The job's audio as 16 kHz mono samples, decoded once for every pass over it."""
    import av
    from faster_whisper.audio import decode_audio

    try:
        return decode_audio(source, sampling_rate=SAMPLE_RATE)
    except av.error.FFmpegError as exc:
        raise WorkerInputError(f"audio cannot be decoded: {exc.strerror or exc}") from None


def _transcribe(model, job: WhisperInput, audio, task: str, batch: int):
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
        max_new_tokens=job.max_new_tokens,
    )
    if job.without_timestamps is not None:
        options["without_timestamps"] = job.without_timestamps
    if not batch:
        segments, info = model.transcribe(audio, **options)
        return list(segments), info  # segments are lazy: decoding happens here
    from faster_whisper import BatchedInferencePipeline

    # Batched decoding has no previous text to condition on: windows run side by side.
    options.pop("condition_on_previous_text")
    if not job.enable_vad:
        # Without VAD to cut the audio, fixed 30 s windows (the last one shorter).
        end = len(audio) / SAMPLE_RATE
        options["clip_timestamps"] = [
            {"start": float(at), "end": min(float(at) + WINDOW_S, end)}
            for at in np.arange(0, end, WINDOW_S)
        ]
    segments, info = BatchedInferencePipeline(model).transcribe(audio, batch_size=batch, **options)
    return list(segments), info


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
