"""The offline speaker encoder: Resemblyzer's GE2E d-vector LSTM, weights from its wheel.

The PyPI package `resemblyzer` (Apache-2.0) ships `pretrained.pt` inside its wheel. Its
own modules import librosa and webrtcvad at import time, so this module never imports
them: it reads the weights file through the package's metadata (no code of the package
runs), builds the same network (3-layer LSTM, 40 mel bands in, 256-d out) and computes
the same features, librosa's default mel spectrogram (power 2, Hann window, 25 ms /
10 ms, Slaney mel scale and area normalisation), with numpy.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # the encoder was trained on 1.6 s partial utterances
EMBED_DIM = 256
_TARGET_DBFS = -30.0  # resemblyzer's volume target (it only ever raises the volume)

_lock = threading.Lock()
_model = None


def weights_path() -> Path:
    """pretrained.pt inside the installed resemblyzer wheel; LookupError when it is not."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("resemblyzer")
    except PackageNotFoundError:
        raise LookupError("the offline speaker model needs the PyPI package resemblyzer "
                          "(pip install 'vidagent[speakers]')") from None
    path = Path(dist.locate_file("resemblyzer/pretrained.pt"))
    if not path.is_file():
        raise LookupError(f"resemblyzer is installed but its weights are missing ({path})")
    return path


def load():
    """The encoder (torch module, eval mode, CPU), loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            import torch
            from torch import nn

            class Encoder(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
                    self.linear = nn.Linear(256, EMBED_DIM)

                def forward(self, mels):
                    _, (hidden, _) = self.lstm(mels)
                    raw = torch.relu(self.linear(hidden[-1]))
                    return raw / torch.clamp(torch.norm(raw, dim=1, keepdim=True), min=1e-8)

            encoder = Encoder()
            state = torch.load(weights_path(), map_location="cpu", weights_only=False)["model_state"]
            # The checkpoint also holds GE2E's training-only similarity scale and bias.
            encoder.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity")})
            _model = encoder.eval()
        return _model


@lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """Slaney-style mel filterbank (librosa.filters.mel's defaults), shape (N_MELS, bins)."""
    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        linear = f / (200.0 / 3)
        log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log_part, linear)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        linear = m * (200.0 / 3)
        log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log_part, linear)

    bins = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    gaps = np.diff(points)
    ramps = points[:, None] - bins[None, :]
    lower = -ramps[:-2] / gaps[:-1, None]
    upper = ramps[2:] / gaps[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (points[2:N_MELS + 2] - points[:N_MELS]))[:, None]
    return weights.astype(np.float32)


def mel_frames(samples: np.ndarray) -> np.ndarray:
    """Power mel spectrogram, one row per 10 ms hop (centred frames, zero-padded)."""
    padded = np.pad(samples.astype(np.float32), N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    if count <= 0:
        return np.zeros((0, N_MELS), np.float32)
    strides = (padded.strides[0] * HOP, padded.strides[0])
    frames = np.lib.stride_tricks.as_strided(padded, (count, N_FFT), strides)
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power.astype(np.float32) @ _mel_filters().T).astype(np.float32)


def embed_windows(samples: np.ndarray, starts: np.ndarray, batch: int = 64) -> np.ndarray:
    """One unit-length embedding per 1.6 s window starting at each sample index of `starts`
    (a window running past the audio is zero-padded). Shape (len(starts), EMBED_DIM).

    The mel spectrogram is computed once for the whole chunk and sliced per window
    (windows overlap, so per-window spectrograms would repeat the work); each window is
    then brought to the encoder's loudness, a gain on its power. The LSTM runs with
    VIDAGENT_SPEAKER_THREADS intra-op threads (default 1): its batches are small, and
    more threads mostly spin (docs/benchmarks.md)."""
    import torch

    if not len(starts):
        return np.zeros((0, EMBED_DIM), np.float32)
    encoder = load()
    length = PARTIAL_FRAMES * HOP
    starts = np.asarray(starts, dtype=np.int64)
    padded = np.pad(samples.astype(np.float32), (0, max(0, int(starts.max()) + length - len(samples))))
    mel = mel_frames(padded)
    frames = starts // HOP
    stacked = np.stack([mel[f:f + PARTIAL_FRAMES] for f in frames])
    stacked *= np.array([_gain(padded[s:s + length]) for s in starts], np.float32)[:, None, None]
    out = []
    with _threads(), torch.inference_mode():
        for at in range(0, len(stacked), batch):
            out.append(encoder(torch.from_numpy(stacked[at:at + batch])).numpy())
    return np.concatenate(out).astype(np.float32)


def _gain(piece: np.ndarray) -> float:
    """Power gain that raises `piece` to the training loudness (never lowers it)."""
    rms = float(np.sqrt(np.mean(piece.astype(np.float64) ** 2))) if len(piece) else 0.0
    if rms <= 1e-6:
        return 1.0
    gain_db = max(0.0, _TARGET_DBFS - 20 * np.log10(rms))
    return float(10 ** (gain_db / 10))  # power scales with the square of the amplitude gain


class _threads:
    """torch's intra-op threads set for the encoder and put back after (process-wide in
    torch: the lock keeps two encoder calls from interleaving their settings)."""

    def __enter__(self):
        import torch

        from . import env_int

        _lock.acquire()
        self.before = torch.get_num_threads()
        torch.set_num_threads(env_int("VIDAGENT_SPEAKER_THREADS", 1, minimum=1))

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)
        _lock.release()
