"""The classification of transcription errors (transcribe/errors.py) on hand-built notes: each
kind of error counted where it belongs, nothing counted for a perfect transcription, and the
reference with every error put in equal to the transcription."""

from __future__ import annotations

import numpy as np
import pytest

from stages.io.midi import NOTE_DTYPE
from transcribe.errors import (
    GHOST_KINDS,
    KINDS,
    RIGHT,
    error_summary,
    length_ratios,
    note_errors,
    onset_errors_s,
    velocity_errors,
    with_errors,
)


def notes(rows) -> np.ndarray:
    return np.sort(np.array(rows, dtype=NOTE_DTYPE), order=["onset_s", "pitch"])


REFERENCE = notes([(0.00, 1.00, 60, 80), (1.00, 1.50, 64, 70), (2.00, 2.50, 67, 60)])
ESTIMATE = notes([
    (0.00, 1.00, 60, 80),  # right
    (0.02, 0.50, 72, 30),  # an octave above the sounding C4: a harmonic ghost
    (1.10, 1.20, 60, 30),  # C4 again 0.1 s after its release: a re-strike
    (2.03, 2.80, 67, 70),  # G4 30 ms late, held 1.6 times as long, 10 louder: matched
    (3.00, 3.20, 50, 50),  # nothing near it: another ghost
])  # E4 (64) is missed


def kind_of(estimate: np.ndarray, errors, pitch: int, onset_s: float) -> str:
    index = np.flatnonzero((estimate["pitch"] == pitch) & np.isclose(estimate["onset_s"], onset_s))
    return str(errors.ghost_kind[index[0]])


def test_each_error_is_counted_where_it_belongs():
    errors = note_errors(REFERENCE, ESTIMATE)
    assert REFERENCE["pitch"][errors.missed].tolist() == [64]
    assert kind_of(ESTIMATE, errors, 72, 0.02) == "octave"
    assert kind_of(ESTIMATE, errors, 60, 1.10) == "restrike"
    assert kind_of(ESTIMATE, errors, 50, 3.00) == "other"
    assert kind_of(ESTIMATE, errors, 60, 0.00) == RIGHT and kind_of(ESTIMATE, errors, 67, 2.03) == RIGHT
    assert onset_errors_s(REFERENCE, ESTIMATE, errors)[REFERENCE["pitch"][errors.pairs[:, 0]] == 67] == \
        pytest.approx([0.03])
    assert sorted(length_ratios(REFERENCE, ESTIMATE, errors)) == pytest.approx([1.0, 0.77 / 0.5])
    assert sorted(velocity_errors(REFERENCE, ESTIMATE, errors)) == [0, 10]


@pytest.mark.parametrize("semitones, kind", [(12, "octave"), (-12, "octave"), (19, "octave"), (24, "octave"),
                                             (7, "other"), (13, "other")])
def test_harmonic_ghosts_are_octaves_twelfths_and_double_octaves_of_a_sounding_note(semitones, kind):
    estimate = notes([*REFERENCE, (0.5, 0.7, 60 + semitones, 40)])
    errors = note_errors(REFERENCE, estimate)
    assert kind_of(estimate, errors, 60 + semitones, 0.5) == kind


def test_a_harmonic_of_a_note_already_released_is_no_octave_ghost():
    estimate = notes([*REFERENCE, (1.2, 1.3, 72, 40)])  # C5 while C4 (0-1 s) is up again
    assert kind_of(estimate, note_errors(REFERENCE, estimate), 72, 1.2) == "other"


def test_a_restrike_of_a_held_key_is_a_restrike_even_an_octave_from_another_note():
    reference = notes([(0.0, 2.0, 60, 80), (0.5, 1.5, 48, 80)])
    estimate = notes([*reference, (0.8, 1.0, 60, 30)])  # C4 again while held, an octave above C3
    assert kind_of(estimate, note_errors(reference, estimate), 60, 0.8) == "restrike"


def test_an_onset_past_the_tolerance_is_a_miss_and_a_ghost():
    estimate = REFERENCE.copy()
    estimate["onset_s"][2] += 0.06
    errors = note_errors(REFERENCE, estimate)
    assert errors.missed.tolist() == [False, False, True]
    assert errors.ghost_kind.tolist() == [RIGHT, RIGHT, "restrike"]  # G4 still held: a re-strike of it


@pytest.mark.parametrize("seed", range(5))
def test_a_perfect_transcription_has_no_errors(seed):
    rng = np.random.default_rng(seed)
    onsets = np.sort(rng.uniform(0, 20, 200))
    reference = notes([(t, t + rng.uniform(0.05, 2.0), rng.integers(21, 109), rng.integers(1, 128)) for t in onsets])
    errors = note_errors(reference, reference.copy())
    assert not errors.missed.any() and (errors.ghost_kind == RIGHT).all()
    summary = error_summary([(reference, reference.copy(), errors)])
    assert summary["missed_share"] == summary["ghost_share"] == 0
    assert all(summary[f"ghost_{kind}_share"] == 0 for kind in GHOST_KINDS)
    assert summary["onset_error_p95_abs_ms"] == summary["velocity_error_mean_abs"] == 0
    assert summary["length_ratio_median"] == pytest.approx(1.0)
    np.testing.assert_array_equal(with_errors(reference, reference, errors, KINDS), reference)


def test_every_error_put_in_gives_the_transcription_and_none_the_reference():
    errors = note_errors(REFERENCE, ESTIMATE)
    np.testing.assert_array_equal(with_errors(REFERENCE, ESTIMATE, errors, KINDS), ESTIMATE)
    np.testing.assert_array_equal(with_errors(REFERENCE, ESTIMATE, errors, ()), REFERENCE)


def test_one_kind_of_error_put_in_changes_only_its_notes():
    errors = note_errors(REFERENCE, ESTIMATE)
    assert with_errors(REFERENCE, ESTIMATE, errors, ["missed"])["pitch"].tolist() == [60, 67]
    octave = with_errors(REFERENCE, ESTIMATE, errors, ["octave"])
    assert octave["pitch"].tolist() == [60, 72, 64, 67]
    onsets = with_errors(REFERENCE, ESTIMATE, errors, ["onsets"])
    assert onsets["onset_s"].tolist() == pytest.approx([0.0, 1.0, 2.03])
    assert onsets["offset_s"].tolist() == pytest.approx(REFERENCE["offset_s"].tolist())
    assert with_errors(REFERENCE, ESTIMATE, errors, ["velocity"])["velocity"].tolist() == [80, 70, 70]
    with pytest.raises(ValueError, match="unknown kinds"):
        with_errors(REFERENCE, ESTIMATE, errors, ["jitter"])


def test_the_summary_counts_shares_of_reference_notes():
    errors = note_errors(REFERENCE, ESTIMATE)
    summary = error_summary([(REFERENCE, ESTIMATE, errors)])
    assert (summary["reference_notes"], summary["estimated_notes"], summary["matched_notes"]) == (3, 5, 2)
    assert summary["missed_share"] == pytest.approx(1 / 3)
    assert summary["ghost_share"] == pytest.approx(1.0)
    assert [summary[f"ghost_{kind}_share"] for kind in GHOST_KINDS] == pytest.approx([1 / 3] * 3)
    assert summary["onset_error_median_abs_ms"] == pytest.approx(15.0)  # 0 and 30 ms
    assert summary["velocity_error_mean"] == pytest.approx(5.0)


def test_empty_sides():
    empty = np.zeros(0, NOTE_DTYPE)
    errors = note_errors(REFERENCE, empty)
    assert errors.missed.all() and len(errors.ghost_kind) == 0
    errors = note_errors(empty, ESTIMATE)
    assert (errors.ghost_kind == "other").all()
    assert error_summary([])["reference_notes"] == 0
