"""The transcriber's input: a log-mel spectrogram, computed the same way in training and inference."""

from __future__ import annotations

import functools
from typing import Iterable

import numpy as np
import scipy.fft

from transcribe.config import TranscriberConfig

LOG_FLOOR = 1e-6  # keeps log() finite in digital silence
SILENCE = float(np.log(LOG_FLOOR))  # the log-mel of digital silence: what windows are padded with


@functools.lru_cache(maxsize=8)
def _mel_matrix(sample_rate_hz: int, fft_size: int, mel_bins: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate_hz, n_fft=fft_size, n_mels=mel_bins, fmin=fmin_hz,
                               fmax=fmax_hz, htk=True).T.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _window(fft_size: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fft_size) / fft_size)).astype(np.float32)


def num_frames(num_samples: int, config: TranscriberConfig) -> int:
    """Frames for a clip: one per hop, centred (frame t covers samples around t * hop)."""
    return num_samples // config.hop_length + 1


def log_mel(audio: np.ndarray, config: TranscriberConfig) -> np.ndarray:
    """(samples,) float audio at config.sample_rate_hz -> (frames, mel_bins) float32."""
    return log_mel_blocks([np.asarray(audio, dtype=np.float32)], config)


def log_mel_blocks(blocks: Iterable[np.ndarray], config: TranscriberConfig) -> np.ndarray:
    """The same frames as `log_mel` of the blocks joined, computed as the blocks arrive, so a
    long recording never has to be in memory as audio."""
    hop, size = config.hop_length, config.fft_size
    pending = np.zeros(size // 2, np.float32)  # the centred first frame's zero padding
    done, total, out = 0, 0, []
    for block in blocks:
        total += len(block)
        pending = np.concatenate([pending, np.asarray(block, dtype=np.float32)])
        ready = (len(pending) - size) // hop + 1 if len(pending) >= size else 0
        if ready > 0:
            out.append(_frames(pending, ready, config))
            pending, done = pending[ready * hop:], done + ready
    pending = np.concatenate([pending, np.zeros(size // 2, np.float32)])
    remaining = num_frames(total, config) - done
    if remaining > 0:
        out.append(_frames(pending, remaining, config))
    return np.concatenate(out) if out else np.zeros((0, config.mel_bins), np.float32)


def _frames(samples: np.ndarray, count: int, config: TranscriberConfig) -> np.ndarray:
    """Log-mels of the first `count` frames of `samples` (frame t starts at t * hop)."""
    hop, size = config.hop_length, config.fft_size
    mel = _mel_matrix(config.sample_rate_hz, size, config.mel_bins, config.fmin_hz, config.fmax_hz)
    window = _window(size)
    out = np.empty((count, config.mel_bins), dtype=np.float32)
    block = 4096  # frames per FFT batch: bounded temporary memory
    for start in range(0, count, block):
        stop = min(count, start + block)
        segment = samples[start * hop: (stop - 1) * hop + size]
        frames = np.lib.stride_tricks.sliding_window_view(segment, size)[::hop]
        spectrum = scipy.fft.rfft(frames * window, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        out[start:stop] = np.log(power.astype(np.float32) @ mel + LOG_FLOOR)
    return out
