"""Audio chunks for transcription: 16 kHz mono, cut where the speaker pauses.

Chunks never overlap and never leave a gap, and each cut falls at the quietest stretch
near the target length, so a word is never split between two chunks (and so never lost
or transcribed twice). The chunker is pure: it takes sample arrays and returns chunks.

Long silences are shortened before chunking: a stretch below SILENCE_DBFS longer than
`keep_silence_s` keeps that much (half after the speech before it, half before the
speech after it) and the rest is not sent. Whisper hears sparse speech in context then
(a chunk of sparse speech otherwise holds a sentence or two, padded to a 30 s window,
and a small model mishears far more of it than when the same sentences are heard
together), and a chunk's `jumps` say where its samples continue later on the clock.
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
KEEP_SILENCE_S = 1.0  # a longer silence is shortened to this before chunking


@dataclass(frozen=True)
class AudioChunk:
    index: int
    start: float  # seconds from the video's first frame
    samples: np.ndarray  # int16, mono, SAMPLE_RATE
    # Where a shortened silence skips time: (sample offset in `samples`, seconds on the
    # video clock of that sample), in order; the samples before the first start at `start`.
    jumps: tuple[tuple[int, float], ...] = ()
    # Computed where the chunk is made (the audio thread), not where it is looked at.
    rms_dbfs: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rms_dbfs", _rms_dbfs(self.samples))

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.time_at(self.duration)

    def time_at(self, offset_s: float) -> float:
        """Seconds on the video clock of `offset_s` seconds into the samples."""
        at = int(round(offset_s * SAMPLE_RATE))
        origin, start = 0, self.start
        for offset, time in self.jumps:
            if offset > at:
                break
            origin, start = offset, time
        return start + offset_s - origin / SAMPLE_RATE

    def stretch_end(self, offset_s: float) -> float:
        """Seconds into the samples where the time after `offset_s` next skips (a shortened
        silence), or the chunk's duration."""
        at = offset_s * SAMPLE_RATE
        return next((offset / SAMPLE_RATE for offset, _ in self.jumps if offset > at), self.duration)

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
    """Feed int16 mono samples in order; get chunks of about `target_s` seconds of sent
    audio, long silences shortened to `keep_silence_s` (None: kept whole)."""

    def __init__(self, target_s: float, start: float = 0.0, search_s: float | None = None,
                 keep_silence_s: float | None = KEEP_SILENCE_S):
        self.target = int(target_s * SAMPLE_RATE)
        search_s = min(5.0, target_s * 0.2) if search_s is None else search_s
        self.search = int(search_s * SAMPLE_RATE)
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._index = 0
        self._silences = _SilenceShortener(start, keep_silence_s)

    def feed(self, samples: np.ndarray) -> list[AudioChunk]:
        self._take(self._silences.feed(samples))
        chunks = []
        while self._buffered >= self.target + self.search:
            data = np.concatenate(self._buffer)
            cut = quietest_cut(data, self.target - self.search, self.target + self.search)
            chunks.append(self._emit(data[:cut]))
            self._buffer, self._buffered = [data[cut:]], len(data) - cut
        return chunks

    def flush(self) -> list[AudioChunk]:
        self._take(self._silences.flush())
        if self._buffered == 0:
            return []
        data = np.concatenate(self._buffer)
        self._buffer, self._buffered = [], 0
        return [self._emit(data, final=True)]

    def _take(self, samples: np.ndarray) -> None:
        if len(samples):
            self._buffer.append(samples)
            self._buffered += len(samples)

    def _emit(self, samples: np.ndarray, final: bool = False) -> AudioChunk:
        start, jumps = self._silences.clock(len(samples), final)
        chunk = AudioChunk(index=self._index, start=start, samples=samples, jumps=jumps)
        self._index += 1
        return chunk


class _SilenceShortener:
    """Streams samples through, shortening each silence longer than `keep_s` to `keep_s`;
    keeps the clock: which video time each sample it passed on belongs to."""

    def __init__(self, start: float, keep_s: float | None):
        self._keep = None if keep_s is None else max(1, round(keep_s / 2 / FRAME_S))  # frames each side
        self._rest = np.zeros(0, np.int16)  # less than a frame, still to judge
        self._run = 0  # silent frames since the last loud one
        self._held: list[np.ndarray] = []  # the silence's last `keep` frames, said only if speech follows
        self._dropped = 0  # frames of this silence not passed on
        self._raw = 0  # samples taken in
        self._out = 0  # samples passed on
        self._start = start
        self._jumps: list[tuple[int, float]] = []  # (samples passed on, video time) where time skips
        self._emitted = 0  # samples already given to chunks
        self._origin = (0, start)  # the clock at the first sample not yet given to a chunk

    def feed(self, samples: np.ndarray) -> np.ndarray:
        if self._keep is None:
            self._raw += len(samples)
            self._out += len(samples)
            return samples
        data = np.concatenate([self._rest, samples]) if len(self._rest) else samples
        whole = len(data) - len(data) % _FRAME
        self._rest = data[whole:]
        frames = data[:whole].reshape(-1, _FRAME)
        silent = frame_levels_db(data[:whole]) < SILENCE_DBFS
        out: list[np.ndarray] = []
        edges = np.flatnonzero(np.diff(silent.astype(np.int8))) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(silent)]):
            if lo < hi:
                (self._silence if silent[lo] else self._sound)(frames[lo:hi].reshape(-1), out)
        return np.concatenate(out) if out else np.zeros(0, np.int16)

    def _silence(self, samples: np.ndarray, out: list[np.ndarray]) -> None:
        n = len(samples) // _FRAME
        direct = max(0, min(n, self._keep - self._run)) * _FRAME
        self._pass(samples[:direct], out)
        self._raw += direct
        self._run += n
        if direct < len(samples):
            self._held.append(samples[direct:])
            self._raw += len(samples) - direct
            held = sum(len(h) for h in self._held)
            over = held - self._keep * _FRAME
            while over > 0:  # drop the oldest held frames beyond `keep`
                cut = min(over, len(self._held[0]))
                self._held[0] = self._held[0][cut:]
                if not len(self._held[0]):
                    self._held.pop(0)
                self._dropped += cut
                over -= cut

    def _sound(self, samples: np.ndarray, out: list[np.ndarray]) -> None:
        if self._held:
            held = np.concatenate(self._held)
            if self._dropped:
                self._jumps.append((self._out, self._start + (self._raw - len(held)) / SAMPLE_RATE))
            self._pass(held, out)
        self._held, self._dropped, self._run = [], 0, 0
        self._pass(samples, out)
        self._raw += len(samples)

    def _pass(self, samples: np.ndarray, out: list[np.ndarray]) -> None:
        if len(samples):
            out.append(samples)
            self._out += len(samples)

    def flush(self) -> np.ndarray:
        """What is left: a trailing silence keeps `keep` frames (the rest is never sent)."""
        rest, self._rest = self._rest, np.zeros(0, np.int16)
        out: list[np.ndarray] = []
        if self._held and not self._dropped:
            self._pass(np.concatenate(self._held), out)
        if not self._dropped:
            self._pass(rest, out)
        else:  # a last jump, after the last sample: the clock still reaches the stream's end
            self._jumps.append((self._out, self._start + (self._raw + len(rest)) / SAMPLE_RATE))
        self._held = []
        return np.concatenate(out) if out else np.zeros(0, np.int16)

    def clock(self, n: int, final: bool = False) -> tuple[float, tuple[tuple[int, float], ...]]:
        """The next `n` samples passed on, as a chunk: its start and its jumps (the last
        chunk's may include one just after its last sample, where the stream ends)."""
        first, last = self._emitted, self._emitted + n
        origin, time = self._origin
        while self._jumps and self._jumps[0][0] <= first and not (final and self._jumps[0][0] == last):
            origin, time = self._jumps.pop(0)
        start = time + (first - origin) / SAMPLE_RATE
        jumps = []
        while self._jumps and (self._jumps[0][0] < last or (final and self._jumps[0][0] == last)):
            origin, time = self._jumps.pop(0)
            jumps.append((origin - first, time))
        self._origin = (origin, time)
        self._emitted = last
        return start, tuple(jumps)


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
