"""How close a renderer comes to a reference recording of the same MIDI, without listening tests.

- `two_sample_accuracy`: a classifier two-sample test (Lopez-Paz & Oquab 2017). Each excerpt's
  audio is cut into 0.5 s windows, each window summarised by the mean and standard deviation of
  its log-mel bands; a logistic regression learns to tell the renderer's windows from the
  reference's on half of the excerpts and is scored on the other half. 0.5: it cannot tell them
  apart; 1.0: it always can. The split is by excerpt, so it cannot win by recognising the music.
- `matched_level`: renders scaled to the reference's RMS before both measures, so they judge the
  timbre, not the renderer's arbitrary output gain.
"""

from __future__ import annotations

import functools

import numpy as np

WINDOW_SECONDS = 0.5
MEL_BANDS = 64


@functools.lru_cache(maxsize=4)
def _mel_filters(sample_rate_hz: int, fft_size: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate_hz, n_fft=fft_size, n_mels=MEL_BANDS).astype(np.float32)


def log_mel(audio: np.ndarray, sample_rate_hz: int, fft_size: int = 1024) -> np.ndarray:
    """(samples,) -> (frames, 64) log mel power, hop fft_size / 4."""
    import librosa

    power = np.abs(librosa.stft(audio.astype(np.float32), n_fft=fft_size, hop_length=fft_size // 4)) ** 2
    return np.log(_mel_filters(sample_rate_hz, fft_size) @ power + 1e-7).T


def window_features(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """(windows, 128): per 0.5 s window, the mean and standard deviation of each log-mel band."""
    mel = log_mel(audio, sample_rate_hz)
    frames = max(1, int(round(WINDOW_SECONDS * sample_rate_hz / 256)))  # 1024-point FFT, hop 256
    count = len(mel) // frames
    windows = mel[: count * frames].reshape(count, frames, MEL_BANDS)
    return np.concatenate([windows.mean(axis=1), windows.std(axis=1)], axis=1)


def two_sample_accuracy(candidate: list[np.ndarray], reference: list[np.ndarray], sample_rate_hz: int,
                        seed: int = 0) -> float:
    """Held-out accuracy of a classifier telling candidate windows from reference windows. The
    lists hold the same excerpts in the same order; even-numbered excerpts (after a seeded
    shuffle) train it, the others test it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(candidate) != len(reference) or len(candidate) < 2:
        raise ValueError("two_sample_accuracy needs the same two or more excerpts from each renderer")
    order = np.random.default_rng(seed).permutation(len(candidate))
    halves = order[::2], order[1::2]

    def labelled(indices):
        features, labels = [], []
        for label, audios in ((1, candidate), (0, reference)):
            for i in indices:
                windows = window_features(audios[i], sample_rate_hz)
                features.append(windows)
                labels.append(np.full(len(windows), label))
        return np.concatenate(features), np.concatenate(labels)

    train_x, train_y = labelled(halves[0])
    test_x, test_y = labelled(halves[1])
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    classifier.fit(train_x, train_y)
    # Ties (identical windows in both classes) count as half right: the classifier cannot tell.
    probability = classifier.predict_proba(test_x)[:, 1]
    right = np.where(np.isclose(probability, 0.5, atol=1e-6), 0.5, (probability > 0.5) == (test_y == 1))
    return float(np.mean(right))


def matched_level(audio: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`audio` scaled to the reference's RMS (silence stays silent)."""
    level = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    wanted = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64))))
    return audio if level == 0.0 else (audio * (wanted / level)).astype(np.float32)
