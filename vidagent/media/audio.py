"""Audio chunks for transcription: 16 kHz mono, cut where the speaker pauses.

Chunks never overlap and never leave a gap, and each cut falls at the quietest stretch
near the target length, so a word is never split between two chunks (and so never lost
or transcribed twice). The chunker is pure: it takes sample arrays and returns chunks.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000
_FRAME = SAMPLE_RATE // 50  # 20 ms energy frames
_PAUSE_FRAMES = 10  # a pause is judged over 200 ms, so a quiet consonant is not taken for one
SILENCE_DBFS = -60.0  # below this a chunk holds no speech and is not sent to a model


@dataclass(frozen=True)
class AudioChunk:
    index: int
    start: float  # seconds from the video's first frame
    samples: np.ndarray  # int16, mono, SAMPLE_RATE
    # Computed where the chunk is made (the audio thread), not where it is looked at.
    rms_dbfs: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rms_dbfs", _rms_dbfs(self.samples))

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def is_silent(self) -> bool:
        return self.rms_dbfs < SILENCE_DBFS

    def wav_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(self.samples.astype("<i2").tobytes())
        return buffer.getvalue()


class AudioChunker:
    """Feed int16 mono samples in order; get chunks of about `target_s` seconds."""

    def __init__(self, target_s: float, start: float = 0.0, search_s: float | None = None):
        self.target = int(target_s * SAMPLE_RATE)
        search_s = min(5.0, target_s * 0.2) if search_s is None else search_s
        self.search = int(search_s * SAMPLE_RATE)
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._start = start
        self._index = 0

    def feed(self, samples: np.ndarray) -> list[AudioChunk]:
        self._buffer.append(samples)
        self._buffered += len(samples)
        chunks = []
        while self._buffered >= self.target + self.search:
            data = np.concatenate(self._buffer)
            cut = quietest_cut(data, self.target - self.search, self.target + self.search)
            chunks.append(self._emit(data[:cut]))
            self._buffer, self._buffered = [data[cut:]], len(data) - cut
        return chunks

    def flush(self) -> list[AudioChunk]:
        if self._buffered == 0:
            return []
        data = np.concatenate(self._buffer)
        self._buffer, self._buffered = [], 0
        return [self._emit(data)]

    def _emit(self, samples: np.ndarray) -> AudioChunk:
        chunk = AudioChunk(index=self._index, start=self._start, samples=samples)
        self._index += 1
        self._start += len(samples) / SAMPLE_RATE
        return chunk


def frame_levels_db(samples: np.ndarray) -> np.ndarray:
    """Loudness (dBFS) of each 20 ms frame."""
    n = len(samples) // _FRAME
    if n == 0:
        return np.zeros(0, np.float32)
    frames = samples[: n * _FRAME].reshape(n, _FRAME).astype(np.float32) / 32768.0
    return 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)


FRAME_S = _FRAME / SAMPLE_RATE


def _rms_dbfs(samples: np.ndarray) -> float:
    if len(samples) == 0:
        return float("-inf")
    # In blocks: a whole chunk as floats would be a 4 MB temporary per minute of audio.
    energy = 0.0
    for start in range(0, len(samples), 1 << 16):
        block = samples[start:start + (1 << 16)].astype(np.float32)
        energy += float(np.dot(block, block))
    rms = np.sqrt(energy / len(samples)) / 32768.0
    return float(20 * np.log10(rms)) if rms > 0 else float("-inf")


def quietest_cut(samples: np.ndarray, lo: int, hi: int) -> int:
    """The sample index in [lo, hi] at the middle of the quietest 200 ms stretch."""
    lo = max(0, lo - lo % _FRAME)
    region = samples[lo:hi].astype(np.float32)
    n_frames = len(region) // _FRAME
    if n_frames < _PAUSE_FRAMES:
        return hi
    energy = np.square(region[: n_frames * _FRAME]).reshape(n_frames, _FRAME).mean(axis=1)
    smoothed = np.convolve(energy, np.ones(_PAUSE_FRAMES) / _PAUSE_FRAMES, mode="valid")
    # Ties (digital silence) go to the frame nearest the target, the middle of the region.
    centre = (len(smoothed) - 1) / 2
    order = np.lexsort((np.abs(np.arange(len(smoothed)) - centre), smoothed))
    best = int(order[0])
    return lo + (best + _PAUSE_FRAMES // 2) * _FRAME
