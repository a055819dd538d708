"""The audio side of the one pass: which stream to hear, and its chunks at true times.

`extract_audio()` reads one audio stream through a demuxer of its own (audio decodes ~20x
faster than video, so transcription can start on every chunk at once) and yields 16 kHz
mono chunks cut in pauses. Sample positions follow the packets' timestamps: a damaged or
missing packet leaves a gap of silence where it was, so it shifts nothing after it.
`choose_streams()` decides which streams to transcribe (`audio_stream` setting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .audio import KEEP_SILENCE_S, SAMPLE_RATE, AudioChunk, AudioChunker
from .probe import MediaInfo, open_container
from .stats import ExtractStats
from .speech import SPEECH_S, SPEECH_SCORE, VAD_MISSING, speech_score, voice_activity_s

# How far the samples decoded so far may fall behind the packets' timestamps before the
# difference is filled with silence: codecs with overlapping blocks (Vorbis) jitter by
# ~10 ms either way, a lost packet (AAC: 23 ms) only ever adds to it. Drift stays below this.
_GAP_TOLERANCE_S = 0.04
PREROLL_S = 0.5  # audio decoded before a stretch's start: codecs overlap blocks (AAC: 2048 samples)
_PROBE_WINDOWS = 6  # places in the file where a stream is listened to when choosing
_PROBE_WINDOW_S = 15.0


def extract_audio(
    path: Path, info: MediaInfo, chunk_s: float, stats: ExtractStats | None = None, stream: int | None = None,
    start_s: float = 0.0, end_s: float | None = None, keep_silence_s: float | None = KEEP_SILENCE_S,
) -> Iterator[AudioChunk]:
    """Chunks of audio stream `stream` (position among the audio streams; None: the default
    one). Time zero is `info.start_time_s`; audio before it is dropped. `start_s`/`end_s`:
    only that stretch (a segment's), read from a seek PREROLL_S before it so the decoder
    has settled when it starts; the samples keep their times. `keep_silence_s`: long
    silences are shortened to this (AudioChunker); None sends every sample, for a caller
    that joins the chunks' samples back into one stretch (the segment worker)."""
    import av

    stats = stats if stats is not None else ExtractStats()
    container = open_container(path)
    damaged = 0
    try:
        audio = _audio_stream(container, stream)
        if audio is None:
            return
        feed = _AudioFeed(chunk_s, info.start_time_s, start_s, keep_silence_s)
        if start_s > 0:
            container.seek(int((info.start_time_s + max(0.0, start_s - PREROLL_S)) / audio.time_base),
                           stream=audio, backward=True)
        try:
            for packet in container.demux(audio):
                if end_s is not None and feed.end_s >= end_s:
                    break
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    damaged += 1
                    continue
                for frame in decoded:
                    yield from feed.push(frame)
        except av.error.FFmpegError as exc:
            stats.warnings.append(f"audio decoding stopped at {feed.end_s:.2f}s: {exc.strerror or exc}")
        yield from feed.flush()
    finally:
        container.close()
    if damaged:
        stats.warnings.append(f"{damaged} damaged audio packet(s) skipped while decoding; "
                              "later audio keeps its times")
    if feed.filled_s >= 0.1:
        stats.warnings.append(f"{feed.filled_s:.1f}s of audio missing from the stream's timeline "
                              "(damaged or dropped packets) was treated as silence")


@dataclass
class StreamChoice:
    positions: list[int]  # among the file's audio streams, in order
    warnings: list[str] = field(default_factory=list)


def choose_streams(path: Path, info: MediaInfo, choice: str | int) -> StreamChoice:
    """Which audio streams to transcribe: `auto` (the one that carries speech, else the
    default one; skipped streams are named in a warning), `all`, or a position N."""
    streams = info.audio_streams
    if not streams:
        return StreamChoice([])
    if choice == "all":
        return StreamChoice(list(range(len(streams))))
    if isinstance(choice, int) or str(choice).isdigit():
        position = int(choice)
        if position >= len(streams):
            from ..errors import MediaError

            raise MediaError(f"{path}: audio_stream {position}: the file has {len(streams)} audio "
                             f"stream(s), numbered 0-{len(streams) - 1}")
        return StreamChoice([position])
    default = next((i for i, s in enumerate(streams) if s.default), 0)
    if len(streams) == 1:
        return StreamChoice([0])
    heard = [_listen(path, info, i) for i in range(len(streams))]
    seconds = [voice_activity_s(samples) for samples in heard]
    if None in seconds:  # no voice-activity model here: the loudness-pattern score
        scores, enough, notes = [speech_score(samples) for samples in heard], SPEECH_SCORE, [VAD_MISSING]
    else:
        scores, enough, notes = seconds, SPEECH_S, []
    best = max(range(len(streams)), key=lambda i: (scores[i], i == default))
    picked = best if scores[best] >= enough else default
    why = "carries speech" if scores[picked] >= enough else "is the default (no stream sounds like speech)"
    skipped = ", ".join(describe_stream(info, i) for i in range(len(streams)) if i != picked)
    warning = (f"audio: transcribing {describe_stream(info, picked)}, which {why}; skipped {skipped} "
               "(choose with --audio-stream N or all)")
    return StreamChoice([picked], [warning + ("; " + notes[0] if notes else "")])


def describe_stream(info: MediaInfo, position: int) -> str:
    stream = info.audio_streams[position]
    details = [d for d in (stream.language, f'"{stream.title}"' if stream.title else None) if d]
    return f"audio stream {position}" + (f" ({', '.join(details)})" if details else "")


def _listen(path: Path, info: MediaInfo, position: int) -> np.ndarray:
    """A few windows of one stream, spread over the file, as 16 kHz mono samples."""
    import av

    if info.duration_s <= _PROBE_WINDOWS * _PROBE_WINDOW_S:  # short enough to hear it all, once
        starts, wanted = [0.0], int(max(info.duration_s, _PROBE_WINDOW_S) * SAMPLE_RATE)
    else:
        starts = [info.duration_s * k / _PROBE_WINDOWS for k in range(_PROBE_WINDOWS)]
        wanted = int(_PROBE_WINDOW_S * SAMPLE_RATE)
    pieces = []
    with open_container(path) as container:
        stream = container.streams.audio[position]
        for start in starts:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            got: list[np.ndarray] = []
            have = 0
            try:
                container.seek(int((info.start_time_s + start) / stream.time_base), stream=stream)
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        got.append(out.to_ndarray().reshape(-1))
                        have += len(got[-1])
                    if have >= wanted:
                        break
            except av.error.FFmpegError:
                continue  # an unreadable stretch is not speech
            if got:
                pieces.append(np.concatenate(got)[:wanted])
    return np.concatenate(pieces) if pieces else np.zeros(0, np.int16)


def _audio_stream(container, position: int | None):
    streams = list(container.streams.audio)
    if not streams:
        return None
    if position is not None:
        return streams[position]
    default = [s for s in streams if s.disposition & 1]  # AV_DISPOSITION_DEFAULT
    return (default or streams)[0]


class _AudioFeed:
    """Resamples decoded audio to 16 kHz mono (a proper downmix), places it by its
    timestamps (silence where packets are missing), drops what comes before time zero,
    and chunks the rest."""

    def __init__(self, chunk_s: float, start_s: float, from_s: float = 0.0,
                 keep_silence_s: float | None = KEEP_SILENCE_S):
        """`start_s`: time zero in the file's clock; `from_s`: seconds from it where chunks start."""
        import av

        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._chunk_s = chunk_s
        self._zero_s = start_s
        self._from_s = max(0.0, from_s)
        self._chunker: AudioChunker | None = None
        self._keep_silence_s = keep_silence_s
        self._skip = 0  # samples before time zero, still to drop
        self._next_in_s: float | None = None  # where the samples decoded so far end
        self.end_s = 0.0  # seconds from time zero fed so far
        self.filled_s = 0.0  # silence put in for missing packets

    def push(self, frame) -> list[AudioChunk]:
        chunks = []
        at = float(frame.time) - self._zero_s if frame.time is not None else None
        if self._chunker is None:
            start = at if at is not None else self._from_s
            self._skip = max(0, round((self._from_s - start) * SAMPLE_RATE))
            self._chunker = AudioChunker(self._chunk_s, start=max(self._from_s, start),
                                         keep_silence_s=self._keep_silence_s)
            self.end_s = max(self._from_s, start)
            self._next_in_s = start
        elif at is not None and self._next_in_s is not None and at - self._next_in_s > _GAP_TOLERANCE_S:
            gap = at - self._next_in_s
            self.filled_s += gap
            self._next_in_s = at
            chunks += self._feed_samples(np.zeros(round(gap * SAMPLE_RATE), np.int16))
        if self._next_in_s is not None and frame.sample_rate:
            self._next_in_s += frame.samples / frame.sample_rate
        for out in self._resampler.resample(frame):
            chunks += self._feed_samples(out.to_ndarray().reshape(-1))
        return chunks

    def flush(self) -> list[AudioChunk]:
        if self._chunker is None:
            return []
        chunks = []
        for out in self._resampler.resample(None):
            chunks += self._feed_samples(out.to_ndarray().reshape(-1))
        return chunks + self._chunker.flush()

    def _feed_samples(self, samples: np.ndarray) -> list[AudioChunk]:
        if self._skip:
            dropped = min(self._skip, len(samples))
            samples, self._skip = samples[dropped:], self._skip - dropped
        self.end_s += len(samples) / SAMPLE_RATE
        return self._chunker.feed(samples) if len(samples) else []
