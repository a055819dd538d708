"""Long silences: shortened before chunking, with the clock kept, and words after them
timed where the sound is. Pure: sample arrays in, chunks and segments out."""

import numpy as np
import pytest

from vidagent.config import Settings
from vidagent.media.audio import SAMPLE_RATE, AudioChunker
from vidagent.tasks.transcribe import parse_result

RNG = np.random.default_rng(3)


def loud(s: float) -> np.ndarray:
    return RNG.normal(0, 3000, int(s * SAMPLE_RATE)).astype(np.int16)


def quiet(s: float) -> np.ndarray:
    return np.zeros(int(s * SAMPLE_RATE), np.int16)


def chunked(audio: np.ndarray, target_s: float, start: float = 0.0, keep_s: float = 1.0):
    chunker = AudioChunker(target_s=target_s, start=start, search_s=1.0, keep_silence_s=keep_s)
    chunks = []
    for piece in np.array_split(audio, 53):  # uneven pieces, as a decoder gives them
        chunks += chunker.feed(piece)
    return chunks + chunker.flush()


def test_long_silences_are_shortened_and_every_sample_keeps_its_time():
    # Sound at 0-4 s, 34-39 s and 59-62 s; silences of 30 s and 20 s between, 8 s after.
    audio = np.concatenate([loud(4), quiet(30), loud(5), quiet(20), loud(3), quiet(8)])
    chunks = chunked(audio, target_s=100, start=10.0)
    assert len(chunks) == 1
    chunk = chunks[0]
    # Each silence keeps 1 s (0.5 s after the sound before it, 0.5 s before the next);
    # the trailing one keeps the 0.5 s after the sound.
    assert chunk.duration == pytest.approx(4 + 1 + 5 + 1 + 3 + 0.5, abs=0.03)
    sent = chunk.samples
    expected = np.concatenate([audio[:int(4.5 * SAMPLE_RATE)], audio[int(33.5 * SAMPLE_RATE):int(39.5 * SAMPLE_RATE)],
                               audio[int(58.5 * SAMPLE_RATE):int(62.5 * SAMPLE_RATE)]])
    assert np.array_equal(sent, expected)
    # The second burst's first sample is at 4.5 + 0.5 s into the samples, 10 + 34 s on the clock.
    assert chunk.time_at(5.0) == pytest.approx(44.0, abs=0.001)
    assert chunk.time_at(2.0) == pytest.approx(12.0, abs=0.001)
    assert chunk.time_at(11.0) == pytest.approx(10 + 59.0, abs=0.001)
    assert chunk.end == pytest.approx(10 + 70.0, abs=0.001)  # the clock reaches the stream's end
    assert chunk.stretch_end(2.0) == pytest.approx(4.5, abs=0.001)


def test_chunks_hold_the_target_of_sent_audio_and_tile_the_clock():
    # 40 bursts of 2 s, 25 s apart: 1000 s of file, 80 s of sound.
    audio = np.concatenate([np.concatenate([loud(2), quiet(23)]) for _ in range(40)])
    chunks = chunked(audio, target_s=30)
    assert len(chunks) == 4  # 40 x (2 s + 1 s kept) = 120 s sent
    assert all(a.end == pytest.approx(b.start, abs=0.001) for a, b in zip(chunks, chunks[1:]))
    assert chunks[0].start == 0.0 and chunks[-1].end == pytest.approx(1000, abs=0.02)
    # Every burst's first sample lands on its own time.
    onsets = []
    for chunk in chunks:
        levels = np.abs(chunk.samples.astype(np.int32))
        starts = np.flatnonzero((levels[1:] > 0) & (np.convolve(levels, np.ones(800), "full")[:len(levels) - 1] == 0))
        onsets += [chunk.time_at((i + 1) / SAMPLE_RATE) for i in starts]
    assert onsets == pytest.approx([25.0 * k for k in range(1, 40)], abs=0.002)


def test_short_pauses_and_quiet_speech_are_sent_whole():
    audio = np.concatenate([loud(3), quiet(0.8), (loud(3) // 30), quiet(0.9), loud(2)])  # quiet: -50 dBFS
    chunk, = chunked(audio, target_s=60)
    assert np.array_equal(chunk.samples, audio) and chunk.jumps == ()


def test_words_whisper_puts_in_the_silence_go_to_the_sound_they_belong_to():
    # Sent: sound 0-3 s, then 1 s of kept silence (the middle of 20 s was not sent), sound
    # from 4 s (on the clock: 3 + 20 = 23 s). Whisper times "again" (the end of the first
    # sentence) 3.1-3.3 s and "Then" (the start of the next) 3.3-3.8 s: both in the silence.
    audio = np.concatenate([loud(3), quiet(20), loud(2)])
    chunk, = chunked(audio, target_s=60, start=100.0, keep_s=1.0)
    first = [{"word": " Last", "start": 2.2, "end": 3.1}, {"word": " again", "start": 3.1, "end": 3.3}]
    second = [{"word": " Then", "start": 3.3, "end": 3.8}, {"word": " more", "start": 3.8, "end": 4.6}]
    output = {"segments": [{"start": 0.0, "end": 3.3, "text": " Last again", "words": first},
                           {"start": 3.3, "end": 4.6, "text": " Then more", "words": second}]}
    got = parse_result(output, chunk, Settings(word_timestamps=True, segment_pause_s=0.8))
    assert [s.text for s in got.segments] == ["Last again", "Then more"]
    last, then = got.segments
    assert last.end == pytest.approx(103.0, abs=0.05)  # where its sound ends, not at the skip
    assert then.start == pytest.approx(123.0, abs=0.05)  # not 103.3 (Whisper) nor 103.5 (the skip)
