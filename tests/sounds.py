"""Sounds that are not speech, and speech as a room and a phone line make it, synthesised
with numpy at 16 kHz (int16 mono), for the tests of the speech-stream choice."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import av
import numpy as np

RATE = 16000


def decoded(path: Path) -> np.ndarray:
    """A media file's first audio stream as 16 kHz mono int16."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        return np.concatenate([out.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                               for out in resampler.resample(frame)])


def _pcm(x: np.ndarray, peak: float) -> np.ndarray:
    return (x / max(1e-9, np.abs(x).max()) * peak * 32767).astype(np.int16)


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return _pcm(np.sin(2 * np.pi * hz * t), 0.3)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Pink-ish noise (white noise with a 1/f slope), as a fan or a street."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.normal(size=int(seconds * RATE)))
    freqs = np.fft.rfftfreq(int(seconds * RATE), 1 / RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    return _pcm(np.fft.irfft(spectrum, int(seconds * RATE)), 0.3)


def music(seconds: float, seed: int = 0) -> np.ndarray:
    """A band at 120 bpm: chords (I-V-vi-IV) with harmonics, a bass line, a lead melody in
    eighths, kick on 1 and 3, snare on 2 and 4, hi-hats in eighths. Its loudness swings at
    2-8 Hz like speech does."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    beat = 0.5
    chords = [(261.6, 329.6, 392.0), (196.0, 246.9, 293.7), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6)]
    scale = [261.6, 293.7, 329.6, 392.0, 440.0, 523.3]

    def note(at: float, length: float, hz: float, level: float, harmonics: int = 3, decay: float = 3.0) -> None:
        lo, hi = int(at * RATE), min(n, int((at + length) * RATE))
        if lo >= n:
            return
        local = t[lo:hi] - at
        envelope = np.minimum(1.0, local / 0.01) * np.exp(-decay * local)
        wave_ = sum(np.sin(2 * np.pi * hz * k * local) / k for k in range(1, harmonics + 1))
        out[lo:hi] += level * envelope * wave_

    def hit(at: float, length: float, level: float, decay: float, highpass: bool) -> None:
        lo, hi = int(at * RATE), min(n, int((at + length) * RATE))
        if lo >= n:
            return
        burst = rng.normal(size=hi - lo)
        if highpass:
            burst = np.diff(burst, prepend=0.0)
        out[lo:hi] += level * burst * np.exp(-decay * (t[lo:hi] - at))

    for bar in range(int(seconds / (4 * beat)) + 1):
        at = bar * 4 * beat
        chord = chords[bar % len(chords)]
        for hz in chord:
            note(at, 4 * beat, hz, 0.15, harmonics=4, decay=0.6)
        note(at, 2 * beat, chord[0] / 2, 0.3, harmonics=2, decay=1.5)
        note(at + 2 * beat, 2 * beat, chord[0] / 2, 0.3, harmonics=2, decay=1.5)
        for eighth in range(8):
            e = at + eighth * beat / 2
            note(e, beat / 2, scale[rng.integers(len(scale))] * 2, 0.12, harmonics=5, decay=6.0)
            hit(e, 0.05, 0.08, 80.0, highpass=True)
        for k in range(4):
            b = at + k * beat
            if k % 2 == 0:  # kick: a falling low sine
                lo, hi = int(b * RATE), min(n, int((b + 0.2) * RATE))
                local = t[lo:hi] - b
                out[lo:hi] += 0.8 * np.sin(2 * np.pi * (40 + 60 * np.exp(-20 * local)) * local) * np.exp(-15 * local)
            else:
                hit(b, 0.15, 0.4, 25.0, highpass=False)
    return _pcm(out, 0.5)


def recorded(speech: np.ndarray, seed: int = 0) -> np.ndarray:
    """Speech as a distant microphone in a room and a phone line hear it: reverberation
    (an exponentially decaying noise impulse response, RT60 ~0.6 s), the telephone band
    (300-3400 Hz) and a steady noise floor 20 dB under the voice."""
    rng = np.random.default_rng(seed)
    x = speech.astype(np.float64) / 32768
    tail = np.arange(int(0.6 * RATE)) / RATE
    response = rng.normal(size=len(tail)) * np.exp(-6.9 * tail / 0.6)
    response *= np.sqrt(0.5 / np.sum(response ** 2))  # the room gives back half the direct sound's energy
    response[0] = 1.0
    size = len(x) + len(response) - 1
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(response, size), size)[: len(x)]
    spectrum = np.fft.rfft(wet)
    freqs = np.fft.rfftfreq(len(wet), 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    band = np.fft.irfft(spectrum, len(wet))
    voiced = np.abs(band) > 0.01 * np.abs(band).max()
    level = np.sqrt(np.mean(band[voiced] ** 2)) if voiced.any() else 0.1
    floor = noise(len(x) / RATE, seed).astype(np.float64) / 32768
    floor *= level / 10 / np.sqrt(np.mean(floor ** 2))
    return _pcm(band + floor, 0.6)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return path


def two_streams(out: Path, default: np.ndarray, second: np.ndarray, titles=("Music and effects", "Commentary")) -> Path:
    """A file whose default audio stream is `default` and whose second is `second` (AAC)."""
    a, b = write_wav(out.with_suffix(".0.wav"), default), write_wav(out.with_suffix(".1.wav"), second)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(a), "-i", str(b), "-map", "0:a", "-map", "1:a",
                    "-c:a", "aac", "-b:a", "64k", "-metadata:s:a:0", f"title={titles[0]}",
                    "-metadata:s:a:1", f"title={titles[1]}", "-disposition:a:0", "default",
                    "-disposition:a:1", "0", str(out)], check=True)
    a.unlink()
    b.unlink()
    return out
