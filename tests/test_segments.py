"""Cutting recordings into examples: bounded lengths, cuts where no note sounds."""

from __future__ import annotations

import numpy as np
import pytest

from maestro.segments import split_points
from stages.io.midi import NOTE_DTYPE, sequence_from_notes

RATE = 1000  # a low rate keeps the arrays small; the logic is rate-independent


def sequence(notes):
    return sequence_from_notes(np.array(notes, dtype=NOTE_DTYPE))


def sounding_at(seq, time):
    return any(n.start_time < time < n.end_time for n in seq.notes)


@pytest.mark.parametrize("seed", range(20))
def test_random_performances_cut_in_silence_within_bounds(seed):
    rng = np.random.default_rng(seed)
    notes, time = [], 0.0
    while time < 120:
        length = rng.uniform(0.1, 4.0)
        notes.append((time, time + length, int(rng.integers(21, 109)), 64))
        time += rng.uniform(0.05, 4.5)  # sometimes overlapping, sometimes with gaps
    seq = sequence(notes)
    audio = rng.standard_normal(int(125 * RATE)).astype(np.float32) * 0.1
    points = split_points(seq, audio, RATE, min_seconds=5, max_seconds=20)
    lengths = np.diff(points)
    assert points[0] == 0 and points[-1] == pytest.approx(125)
    assert lengths.max() <= 20 + 1e-9
    assert (lengths[:-1] >= 5 - 1e-9).all()
    for previous, cut in zip(points[:-2], points[1:-1]):
        # A cut through sounding notes only where the window held no silence at all.
        if sounding_at(seq, cut):
            assert not _silent_between(seq, previous + 5, previous + 20)


def _silent_between(seq, low, high):
    grid = np.linspace(low, high, 2000)
    return any(not sounding_at(seq, t) for t in grid)


def test_cut_falls_in_the_latest_silence():
    seq = sequence([(0, 9, 60, 64), (10, 17, 62, 64), (18, 30, 64, 64)])
    points = split_points(seq, np.zeros(30 * RATE, np.float32), RATE, 5, 20)
    assert points == [0.0, pytest.approx(17.5), 30.0]


def test_without_silence_the_cut_takes_the_quietest_moment():
    seq = sequence([(0, 40, 60, 64)])
    audio = np.ones(40 * RATE, np.float32)
    audio[int(12.3 * RATE): int(12.4 * RATE)] = 0.0
    points = split_points(seq, audio, RATE, 5, 20)
    assert points[1] == pytest.approx(12.35, abs=0.05)
    assert all(b - a <= 20 for a, b in zip(points, points[1:]))


def test_short_recordings_are_one_example():
    seq = sequence([(0, 3, 60, 64)])
    assert split_points(seq, np.zeros(8 * RATE, np.float32), RATE) == [0.0, 8.0]
