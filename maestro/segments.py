"""Where to cut a long recording into training examples.

As Magenta did for Onsets and Frames: examples of at most ~20 s, cut where no note sounds, so
that no label is split between two examples. Where nothing is silent for a whole window (a long
pedalled passage), cut at the quietest moment of the audio instead.
"""

from __future__ import annotations

import numpy as np

from stages.io.midi import NoteSequence, sounding_intervals

ENERGY_FRAME_SECONDS = 0.032


def split_points(sequence: NoteSequence, audio: np.ndarray, sample_rate_hz: int,
                 min_seconds: float = 5.0, max_seconds: float = 20.0) -> list[float]:
    """Times (seconds, from 0 to the audio's end) at which to cut; consecutive points are at
    most `max_seconds` apart and, except the last span, at least `min_seconds`.

    `sequence` should be sustain-extended, so that a pedalled note counts as sounding.
    """
    if not 0 < min_seconds < max_seconds:
        raise ValueError("need 0 < min_seconds < max_seconds")
    total = len(audio) / sample_rate_hz
    silences = _silences(sounding_intervals(sequence), total)
    points = [0.0]
    while total - points[-1] > max_seconds:
        start = points[-1]
        low, high = start + min_seconds, start + max_seconds
        cut = _latest_silence(silences, low, high)
        if cut is None:
            cut = _quietest_time(audio, sample_rate_hz, low, high)
        points.append(cut)
    points.append(total)
    return points


def _silences(sounding: list[tuple[float, float]], total: float) -> list[tuple[float, float]]:
    """The gaps between sounding spans, within [0, total]."""
    gaps, cursor = [], 0.0
    for start, end in sounding:
        if start > cursor:
            gaps.append((cursor, min(start, total)))
        cursor = max(cursor, end)
    if cursor < total:
        gaps.append((cursor, total))
    return [(a, b) for a, b in gaps if b > a]


def _latest_silence(silences: list[tuple[float, float]], low: float, high: float) -> float | None:
    """The middle of the latest silent stretch inside (low, high], or None."""
    for a, b in reversed(silences):
        a, b = max(a, low), min(b, high)
        if b > a:
            return (a + b) / 2.0
    return None


def _quietest_time(audio: np.ndarray, sample_rate_hz: int, low: float, high: float) -> float:
    frame = max(1, int(ENERGY_FRAME_SECONDS * sample_rate_hz))
    first, last = int(low * sample_rate_hz), int(high * sample_rate_hz)
    window = audio[first:last]
    count = len(window) // frame
    if count == 0:
        return high
    energy = np.square(window[: count * frame].reshape(count, frame), dtype=np.float64).mean(axis=1)
    return (first + (int(np.argmin(energy)) + 0.5) * frame) / sample_rate_hz
