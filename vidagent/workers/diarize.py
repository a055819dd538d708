"""Speaker evidence for one audio chunk, returned beside its transcript.

`diarize(samples, options, speech)` is the one entry point: 16 kHz mono samples of one
chunk, the job's options, and where speech is (from Whisper's words). It returns the
`diarization` field of the whisper worker's output (a vidagent extension; RunPod's
worker-faster_whisper has none), always on the chunk's clock:

    {"backend": "offline" | "pyannote",
     "model": what made the embeddings,
     "speech": [[start, end], ...],
     "windows": [[start, end], ...],          # offline: one embedding per window
     "turns": [{"start", "end", "speaker"}],  # pyannote: its turns, labels local to the chunk
     "labels": [...],                         # pyannote: the local labels, in embedding order
     "embeddings": {"dtype": "float16", "dim": D, "data": base64}}

Labels are not decided here: a chunk cannot know who spoke in the others. The client
clusters every chunk's embeddings once per video (vidagent/speakers), so a speaker keeps
one label across chunks. Backends by name in BACKENDS; `auto` is pyannote where
pyannote.audio and its weights are installed (our endpoint image), offline elsewhere.

Worker settings: VIDAGENT_DIARIZATION_BACKEND (auto, offline, pyannote) when a job names
none; VIDAGENT_PYANNOTE_PIPELINE, the baked pipeline's folder (endpoints/whisper/Dockerfile).
"""

from __future__ import annotations

import base64
import os
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import WorkerInputError, env_choice

SAMPLE_RATE = 16000
WINDOW_S = 1.6  # the offline encoder's training length
PYANNOTE_PIPELINE = "pyannote/speaker-diarization-community-1"
Backend = Literal["auto", "offline", "pyannote"]


class DiarizeOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    backend: Backend | None = Field(None, description="None: VIDAGENT_DIARIZATION_BACKEND, else auto.")
    step_s: float = Field(0.5, ge=0.1, le=WINDOW_S, description="Offline: seconds between window starts.")
    num_speakers: int | None = Field(None, ge=1, le=50)
    min_speakers: int | None = Field(None, ge=1, le=50)
    max_speakers: int | None = Field(None, ge=1, le=50)


def chosen_backend(options: DiarizeOptions) -> str:
    wanted = options.backend or env_choice("VIDAGENT_DIARIZATION_BACKEND", "auto", ("auto", "offline", "pyannote"))
    if wanted != "auto":
        return wanted
    return "pyannote" if pyannote_available() else "offline"


def pyannote_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyannote.audio") is not None and bool(_pyannote_source())


def _pyannote_source() -> str | None:
    folder = os.environ.get("VIDAGENT_PYANNOTE_PIPELINE")
    return folder if folder and os.path.isdir(folder) else None


def diarize(samples: np.ndarray, options: DiarizeOptions, speech: list[tuple[float, float]]) -> dict[str, Any]:
    """The chunk's speaker evidence (see the module doc); `speech` on the chunk's clock."""
    backend = chosen_backend(options)
    if backend not in BACKENDS:
        raise WorkerInputError(f"diarization backend {backend!r} unknown; known: {', '.join(BACKENDS)}")
    samples = np.asarray(samples, dtype=np.float32)
    duration = len(samples) / SAMPLE_RATE
    speech = [(max(0.0, float(a)), min(duration, float(b))) for a, b in speech]
    speech = [(a, b) for a, b in speech if b - a > 0.05]
    return BACKENDS[backend](samples, options, speech)


def window_starts(speech: list[tuple[float, float]], step_s: float, duration: float) -> list[tuple[float, float, float]]:
    """(audio start, span start, span end) per window: windows step through each speech
    region; a region shorter than a window gets one, centred on it. The span is the part of
    the region a window speaks for (its share between its neighbours' centres)."""
    out = []
    for a, b in speech:
        if b - a <= WINDOW_S:
            centre = (a + b) / 2
            start = min(max(0.0, centre - WINDOW_S / 2), max(0.0, duration - WINDOW_S))
            out.append((start, a, b))
            continue
        count = int(np.floor((b - a - WINDOW_S) / step_s)) + 1
        starts = [a + i * step_s for i in range(count)]
        if b - (starts[-1] + WINDOW_S) > step_s / 2:
            starts.append(b - WINDOW_S)
        centres = [s + WINDOW_S / 2 for s in starts]
        for i, s in enumerate(starts):
            lo = a if i == 0 else (centres[i - 1] + centres[i]) / 2
            hi = b if i == len(starts) - 1 else (centres[i] + centres[i + 1]) / 2
            out.append((s, lo, hi))
    return out


def _offline(samples: np.ndarray, options: DiarizeOptions, speech) -> dict[str, Any]:
    from . import voice_encoder

    windows = window_starts(speech, options.step_s, len(samples) / SAMPLE_RATE)
    try:
        vectors = voice_encoder.embed_windows(samples, np.array([round(w[0] * SAMPLE_RATE) for w in windows]))
    except LookupError as exc:
        raise WorkerInputError(str(exc)) from None
    return {
        "backend": "offline",
        "model": "resemblyzer-ge2e",
        "speech": [[round(a, 3), round(b, 3)] for a, b in speech],
        "windows": [[round(lo, 3), round(hi, 3)] for _, lo, hi in windows],
        "embeddings": pack(vectors),
    }


_pipeline = None


def _pyannote(samples: np.ndarray, options: DiarizeOptions, speech) -> dict[str, Any]:
    """pyannote.audio 4's open pipeline, loaded from the copy baked into the image."""
    global _pipeline
    source = _pyannote_source()
    if source is None:
        raise WorkerInputError("diarization backend 'pyannote' needs VIDAGENT_PYANNOTE_PIPELINE, the folder "
                               "the endpoint image bakes the pipeline into (endpoints/whisper/Dockerfile)")
    import torch

    if _pipeline is None:
        from pyannote.audio import Pipeline

        _pipeline = Pipeline.from_pretrained(source)
        if torch.cuda.is_available():
            _pipeline.to(torch.device("cuda"))
    counts = {k: v for k, v in (("num_speakers", options.num_speakers), ("min_speakers", options.min_speakers),
                                ("max_speakers", options.max_speakers)) if v is not None}
    result = _pipeline({"waveform": torch.from_numpy(samples)[None], "sample_rate": SAMPLE_RATE}, **counts)
    annotation = getattr(result, "speaker_diarization", result)
    labels = list(annotation.labels())
    turns = [{"start": round(float(seg.start), 3), "end": round(float(seg.end), 3), "speaker": str(label)}
             for seg, _, label in annotation.itertracks(yield_label=True)]
    vectors = np.asarray(getattr(result, "speaker_embeddings", np.zeros((len(labels), 0))), np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8) if vectors.size else vectors
    return {
        "backend": "pyannote",
        "model": PYANNOTE_PIPELINE,
        "speech": [[round(a, 3), round(b, 3)] for a, b in speech],
        "turns": turns,
        "labels": [str(label) for label in labels],
        "embeddings": pack(vectors),
    }


BACKENDS: dict[str, Callable[..., dict[str, Any]]] = {"offline": _offline, "pyannote": _pyannote}


def pack(vectors: np.ndarray) -> dict[str, Any]:
    vectors = np.asarray(vectors, np.float32)
    dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
    return {"dtype": "float16", "dim": dim,
            "data": base64.b64encode(vectors.astype("<f2").tobytes()).decode("ascii")}


def unpack(packed: dict[str, Any]) -> np.ndarray:
    """Rows of float32 (a reply of the wrong shape raises ValueError)."""
    if packed.get("dtype") != "float16":
        raise ValueError(f"embeddings of dtype {packed.get('dtype')!r}; expected float16")
    dim = int(packed["dim"])
    flat = np.frombuffer(base64.b64decode(packed["data"]), "<f2").astype(np.float32)
    if dim <= 0:
        return np.zeros((0, 0), np.float32)
    if len(flat) % dim:
        raise ValueError("embeddings' length is not a multiple of their dim")
    return flat.reshape(-1, dim)


def speech_regions(samples: np.ndarray, segments: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Where someone speaks: Silero VAD (shipped inside faster-whisper) with short pauses
    kept, since a pause is where turns change; Whisper's words where it is missing.
    Whisper alone misses speech it cannot transcribe (an accent, a mumble) and puts a
    word's span over the silence after it."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError:
        return speech_from_words(segments)
    options = VadOptions(min_silence_duration_ms=300, speech_pad_ms=60, min_speech_duration_ms=200)
    found = get_speech_timestamps(np.asarray(samples, np.float32), options)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in found]


def speech_from_words(segments: list[dict[str, Any]], bridge_s: float = 0.3) -> list[tuple[float, float]]:
    """Where Whisper heard speech: its words (segments without words: the segment), with
    gaps shorter than `bridge_s` bridged."""
    spans = []
    for segment in segments:
        words = segment.get("words")
        if words:
            spans += [(float(w["start"]), float(w["end"])) for w in words if float(w["end"]) > float(w["start"])]
        elif str(segment.get("text") or "").strip():
            spans.append((float(segment["start"]), float(segment["end"])))
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a - merged[-1][1] < bridge_s:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]
