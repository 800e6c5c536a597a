"""The transcriber's input: a log-mel spectrogram, computed the same way in training and inference."""

from __future__ import annotations

import functools

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
    audio = np.asarray(audio, dtype=np.float32)
    half = config.fft_size // 2
    padded = np.pad(audio, (half, half))
    count = num_frames(len(audio), config)
    mel = _mel_matrix(config.sample_rate_hz, config.fft_size, config.mel_bins, config.fmin_hz, config.fmax_hz)
    window = _window(config.fft_size)
    out = np.empty((count, config.mel_bins), dtype=np.float32)
    block = 4096  # frames per FFT batch: bounded memory on hour-long recordings
    for start in range(0, count, block):
        stop = min(count, start + block)
        first = start * config.hop_length
        segment = padded[first: (stop - 1) * config.hop_length + config.fft_size]
        frames = np.lib.stride_tricks.sliding_window_view(segment, config.fft_size)[:: config.hop_length]
        spectrum = scipy.fft.rfft(frames * window, axis=1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        out[start:stop] = np.log(power.astype(np.float32) @ mel + LOG_FLOOR)
    return out
