"""How much of a stretch of audio is speech, for `--audio-stream auto`.

The measure is Silero VAD, the voice-activity model faster-whisper ships (an ONNX file it
runs with onnxruntime): seconds of speech it finds. Tones, steady noise and music score
(close to) nothing, and sparse speech is counted by its seconds, so a commentary that
speaks now and then is not outvoted by its own silences. Where faster-whisper is not
installed (a light client whose models all run on RunPod), a pure-numpy fallback scores
how speech-like the loudness pattern is, and the choice says so in its warning.

The fallback: speech switches on and off at the syllable rate, so the loudness envelope
of the voice band (300-3400 Hz) swings at 2-8 Hz far more than that of a tone, steady
noise or most music, and it pauses between phrases. The score is the share of the
envelope's modulation energy in 2-8 Hz, discounted where the audio hardly pauses,
averaged over 4 s windows (a silent window scores 0).
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

_HOP = SAMPLE_RATE // 100  # 10 ms envelope steps
_WINDOW = 400  # envelope steps per analysis window (4 s)
_SILENT_DBFS = -55.0
_PAUSES = 0.15  # speech spends at least this share of its time in gaps between syllables
SPEECH_SCORE = 0.35  # at or above: the stream carries speech (fallback score)
SPEECH_S = 1.0  # at least this many seconds of voice activity: the stream carries speech
VAD_MISSING = ("faster-whisper is not installed here, so speech was judged by its loudness pattern "
               "(pip install 'vidagent[whisper]' to use its voice-activity model)")


def voice_activity_s(samples: np.ndarray) -> float | None:
    """Seconds of speech Silero VAD finds in 16 kHz mono int16 samples; None where
    faster-whisper (which bundles the model) is not installed."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError:
        return None
    if not len(samples):
        return 0.0
    # Counted tight: no padding around each stretch, and a 100 ms pause ends one, so the
    # seconds are the voice's own; a blip under 250 ms is not speech.
    options = VadOptions(min_speech_duration_ms=250, min_silence_duration_ms=100, speech_pad_ms=0)
    found = get_speech_timestamps(samples.astype(np.float32) / 32768.0, options, sampling_rate=SAMPLE_RATE)
    return sum(s["end"] - s["start"] for s in found) / SAMPLE_RATE


def speech_score(samples: np.ndarray) -> float:
    """0 (silence, tone, noise) to ~1 (clean speech), for 16 kHz mono int16 samples."""
    if len(samples) < _HOP * _WINDOW:
        return 0.0
    x = samples.astype(np.float32) / 32768.0
    envelope = _voice_band_envelope(x)
    scores = []
    for start in range(0, len(envelope) - _WINDOW + 1, _WINDOW):
        raw = x[start * _HOP:(start + _WINDOW) * _HOP]
        level = 10 * np.log10(max(float(np.mean(raw ** 2)), 1e-12))
        if level < _SILENT_DBFS:
            scores.append(0.0)
            continue
        window = envelope[start:start + _WINDOW]
        scores.append(_modulation_share(window) * min(1.0, _pause_share(window) / _PAUSES))
    return float(np.mean(scores)) if scores else 0.0


def _voice_band_envelope(x: np.ndarray) -> np.ndarray:
    """RMS per 10 ms of the 300-3400 Hz band, from an FFT per 20 ms frame."""
    n_frames = len(x) // _HOP - 1
    frames = np.lib.stride_tricks.sliding_window_view(x, 2 * _HOP)[::_HOP][:n_frames]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(2 * _HOP), axis=1)) ** 2
    freqs = np.fft.rfftfreq(2 * _HOP, 1 / SAMPLE_RATE)
    band = (freqs >= 300) & (freqs <= 3400)
    return np.sqrt(spectrum[:, band].mean(axis=1))


def _pause_share(window: np.ndarray) -> float:
    """Share of the window at least 10 dB below its loud parts: the gaps between words."""
    loud = np.percentile(window, 90)
    return float(np.mean(window < loud * 0.316)) if loud > 0 else 0.0


def _modulation_share(window: np.ndarray) -> float:
    """Share of the envelope's fluctuation energy (0.5-25 Hz) that lies in 2-8 Hz."""
    centred = window - window.mean()
    power = np.abs(np.fft.rfft(centred * np.hanning(len(centred)))) ** 2
    freqs = np.fft.rfftfreq(len(centred), 1 / 100)
    total = power[(freqs >= 0.5) & (freqs <= 25)].sum()
    if total <= 0:
        return 0.0
    return float(power[(freqs >= 2) & (freqs <= 8)].sum() / total)
