"""MAESTRO-paper transcription metrics, checked against hand-made cases and mir_eval."""

from __future__ import annotations

import warnings

import mir_eval
import numpy as np
import pytest

from stages.io.midi import NOTE_DTYPE, PIANO_KEYS, PIANO_LOWEST_PITCH
from transcribe.decode import notes_to_roll
from transcribe.metrics import (
    FAMILIES,
    format_metrics,
    matched_notes,
    mean_metrics,
    release_ghost_share,
    release_ghosts,
    transcription_metrics,
)

FPS = 31.25
KEYS = [f"{family}/{stat}" for family in FAMILIES for stat in ("precision", "recall", "f1")]


def notes(rows) -> np.ndarray:
    return np.array(rows, dtype=NOTE_DTYPE)


REFERENCE = notes([(0.10, 0.60, 60, 20), (0.50, 1.20, 64, 40), (0.90, 1.40, 67, 60),
                   (1.30, 2.00, 72, 80), (1.80, 2.50, 48, 100), (2.20, 3.00, 55, 120)])


def with_column(base: np.ndarray, name: str, values) -> np.ndarray:
    changed = base.copy()
    changed[name] = values
    return changed


def test_identical_notes_score_one_everywhere():
    metrics = transcription_metrics(REFERENCE, REFERENCE.copy())
    assert sorted(metrics) == sorted(KEYS)
    assert all(value == pytest.approx(1.0) for value in metrics.values())


@pytest.mark.parametrize("shift_s, matches", [(0.04, True), (-0.04, True), (0.06, False),
                                              (-0.06, False)])
def test_onset_tolerance_is_50_ms(shift_s, matches):
    estimate = REFERENCE.copy()
    estimate["onset_s"][2] += shift_s
    metrics = transcription_metrics(REFERENCE, estimate)
    expected = 1.0 if matches else 5 / 6
    assert metrics["note/f1"] == pytest.approx(expected)
    assert metrics["note/precision"] == pytest.approx(expected)


def test_wrong_offset_fails_note_with_offset_but_passes_note():
    estimate = REFERENCE.copy()
    estimate["offset_s"][0] = 1.5  # 0.5 s note held to 1.4 s: far outside 20% / 50 ms
    metrics = transcription_metrics(REFERENCE, estimate)
    assert metrics["note/f1"] == pytest.approx(1.0)
    assert metrics["note-with-offset/recall"] == pytest.approx(5 / 6)
    assert metrics["note-with-offset-and-velocity/recall"] == pytest.approx(5 / 6)
    assert metrics["frame/precision"] < 1.0


def test_offset_within_tolerance_still_matches():
    estimate = REFERENCE.copy()
    estimate["offset_s"][0] += 0.09  # tolerance is max(0.2 * 0.5 s, 50 ms) = 100 ms
    assert transcription_metrics(REFERENCE, estimate)["note-with-offset/f1"] == pytest.approx(1.0)


def test_velocities_scaled_by_a_constant_still_match():
    estimate = with_column(REFERENCE, "velocity", REFERENCE["velocity"] // 2)
    metrics = transcription_metrics(REFERENCE, estimate)
    assert metrics["note-with-offset-and-velocity/f1"] == pytest.approx(1.0)


def test_scrambled_velocities_do_not_match():
    estimate = with_column(REFERENCE, "velocity", [120, 20, 100, 40, 80, 60])
    metrics = transcription_metrics(REFERENCE, estimate)
    assert metrics["note-with-offset/f1"] == pytest.approx(1.0)
    assert metrics["note-with-offset-and-velocity/f1"] < 0.5


def roll_to_mir_eval(roll: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    times = np.arange(len(roll)) / FPS
    pitches = PIANO_LOWEST_PITCH + np.arange(PIANO_KEYS)
    return times, [mir_eval.util.midi_to_hz(pitches[row]) for row in roll]


def test_frame_metrics_equal_mir_eval_multipitch():
    estimate = notes([(0.10, 0.70, 60, 64),    # runs long
                      (0.55, 1.00, 64, 64),    # starts late, ends early
                      (0.90, 1.40, 66, 64),    # wrong pitch
                      (1.30, 2.00, 72, 64), (2.20, 3.20, 55, 64), (2.60, 2.90, 90, 64)])
    metrics = transcription_metrics(REFERENCE, estimate, frames_per_second=FPS)
    num_frames = int(3.3 * FPS)
    ref_times, ref_hz = roll_to_mir_eval(notes_to_roll(REFERENCE, FPS, num_frames))
    est_times, est_hz = roll_to_mir_eval(notes_to_roll(estimate, FPS, num_frames))
    scores = mir_eval.multipitch.evaluate(ref_times, ref_hz, est_times, est_hz)
    assert 0.3 < metrics["frame/precision"] < 0.95
    assert metrics["frame/precision"] == pytest.approx(scores["Precision"])
    assert metrics["frame/recall"] == pytest.approx(scores["Recall"])
    precision, recall = scores["Precision"], scores["Recall"]
    assert metrics["frame/f1"] == pytest.approx(2 * precision * recall / (precision + recall))


@pytest.mark.parametrize("reference, estimate, expected", [
    (notes([]), notes([]), 1.0),
    (REFERENCE, notes([]), 0.0),
    (notes([]), REFERENCE, 0.0),
])
def test_empty_sides(reference, estimate, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = transcription_metrics(reference, estimate)
    assert sorted(metrics) == sorted(KEYS)
    assert all(value == expected for value in metrics.values())


def test_no_match_gives_zero_f1_not_nan():
    estimate = with_column(REFERENCE, "pitch", REFERENCE["pitch"] + 1)
    metrics = transcription_metrics(REFERENCE, estimate)
    assert all(metrics[key] == 0.0 for key in KEYS)


def test_mean_metrics_averages_per_key():
    pieces = [{"note/f1": 1.0, "frame/f1": 0.5}, {"note/f1": 0.5, "frame/f1": 0.0},
              {"note/f1": 0.0, "frame/f1": 1.0}]
    assert mean_metrics(pieces) == pytest.approx({"note/f1": 0.5, "frame/f1": 0.5})
    assert mean_metrics([]) == {}


def test_format_metrics_is_one_aligned_row_per_family():
    table = format_metrics(transcription_metrics(REFERENCE, REFERENCE))
    lines = table.splitlines()
    assert len(lines) == 1 + len(FAMILIES)
    assert len({len(line) for line in lines}) == 1
    assert lines[1].split()[0] == "frame" and "1.0000" in lines[1]


def test_matched_notes_name_the_missed_and_the_wrong_notes_and_agree_with_the_scores():
    estimate = REFERENCE.copy()
    estimate["onset_s"][1] += 0.08  # too late: missed, and a wrong note
    estimate = np.concatenate([estimate, notes([(2.7, 2.9, 90, 64)])])  # a ghost note
    found, right = matched_notes(REFERENCE, estimate)
    assert found.tolist() == [True, False, True, True, True, True]
    assert right.tolist() == [True, False, True, True, True, True, False]
    metrics = transcription_metrics(REFERENCE, estimate)
    assert metrics["note/recall"] == pytest.approx(found.mean())
    assert metrics["note/precision"] == pytest.approx(right.mean())
    assert [a.tolist() for a in matched_notes(REFERENCE, notes([]))] == [[False] * 6, []]


# A C major chord struck at 1.0 s and held to 1.75 s, then a melody note; the pianist repeats E at 2.2 s.
CHORD = notes([(1.0, 1.75, 60, 80), (1.0, 1.75, 64, 80), (1.0, 1.75, 67, 80),
               (1.8, 2.1, 72, 70), (2.2, 2.6, 64, 70)])


def test_a_release_ghost_counts_and_a_repeated_note_does_not():
    # Each key of the chord found again, short and quiet, 0.7 s after the strike as the keys come up.
    ghosts = notes([(1.7, 1.73, 60, 12), (1.7, 1.73, 64, 12), (1.7, 1.73, 67, 12)])
    estimate = np.sort(np.concatenate([CHORD, ghosts]), order=["onset_s", "pitch"])
    assert release_ghosts(CHORD, estimate).sum() == 3
    assert release_ghost_share(CHORD, estimate) == pytest.approx(3 / 5)
    # The repeated E at 2.2 s (0.45 s after the first E ends) is in the reference: not a ghost.
    assert release_ghosts(CHORD, CHORD).sum() == 0
    assert release_ghost_share(CHORD, CHORD) == 0.0


def test_ghosts_just_after_a_release_count_and_other_wrong_notes_do_not():
    after_release = notes([(1.95, 2.0, 67, 20)])  # 0.2 s after the G was released
    assert release_ghosts(CHORD, np.concatenate([CHORD, after_release])).tolist() == [False] * 5 + [True]
    others = notes([(1.4, 1.6, 62, 40),    # a wrong pitch while the chord sounds
                    (2.75, 2.8, 72, 40),   # the melody's C again, 0.65 s after it ended
                    (3.6, 3.9, 64, 40),    # the E again, 1 s after the repeated E ended
                    (1.03, 1.1, 60, 40)])  # the chord's C twice within the onset tolerance: a duplicate
    assert not release_ghosts(CHORD, np.concatenate([CHORD, others])).any()
    assert release_ghost_share(notes([]), others) == 0.0
    assert release_ghosts(CHORD, notes([])).tolist() == []
