"""Decoding frame/onset/velocity outputs into notes, and notes back into a roll."""

from __future__ import annotations

import numpy as np
import pytest

from stages.io.midi import NOTE_DTYPE, PIANO_KEYS, PIANO_LOWEST_PITCH
from transcribe.decode import decode_notes, notes_to_roll, offset_ends

FPS = 10.0  # a round rate keeps expected times exact to read
A4 = 69


def rolls(num_frames: int = 12):
    """Empty (frames, onsets, velocities) arrays to fill in by hand."""
    shape = (num_frames, PIANO_KEYS)
    return np.zeros(shape), np.zeros(shape), np.zeros(shape)


def key(pitch: int) -> int:
    return pitch - PIANO_LOWEST_PITCH


def as_tuples(notes):
    return [(float(on), float(off), int(p), int(v)) for on, off, p, v in notes]


def test_frames_without_onset_give_no_note():
    frames, onsets, velocities = rolls()
    frames[2:8, key(A4)] = 0.9
    assert len(decode_notes(frames, onsets, velocities, FPS)) == 0


def test_note_lasts_while_frames_stay_active():
    frames, onsets, velocities = rolls()
    onsets[2, key(A4)] = 0.8
    frames[2:7, key(A4)] = 0.9
    velocities[2, key(A4)] = 64 / 127
    notes = decode_notes(frames, onsets, velocities, FPS)
    assert as_tuples(notes) == [(0.2, 0.7, A4, 64)]
    assert notes.dtype == NOTE_DTYPE


def test_onset_alone_makes_a_one_frame_note():
    frames, onsets, velocities = rolls()
    onsets[3, key(A4)] = 0.8
    assert as_tuples(decode_notes(frames, onsets, velocities, FPS)) == [(0.3, 0.4, A4, 1)]


def test_re_onset_splits_a_held_note():
    frames, onsets, velocities = rolls()
    frames[1:9, key(A4)] = 0.9
    onsets[[1, 5], key(A4)] = 0.9
    velocities[1, key(A4)], velocities[5, key(A4)] = 30 / 127, 90 / 127
    notes = decode_notes(frames, onsets, velocities, FPS)
    assert as_tuples(notes) == [(0.1, 0.5, A4, 30), (0.5, 0.9, A4, 90)]


def test_offset_head_ends_a_note_the_frame_head_holds_too_long():
    frames, onsets, velocities = rolls()
    onsets[2, key(A4)] = 0.8
    frames[2:10, key(A4)] = 0.6  # a decaying note the frame head still half hears
    offsets = np.zeros_like(frames)
    offsets[3, key(A4)] = 0.9  # at the attack: too soon to end the note (OFFSET_MIN_FRAMES)
    offsets[6, key(A4)] = 0.7  # the damper: the note ends after this frame
    offsets[8, key(A4)] = 0.9
    assert as_tuples(decode_notes(frames, onsets, velocities, FPS))[0][:2] == (0.2, 1.0)
    ended = decode_notes(frames, onsets, velocities, FPS, note_ends=offset_ends(frames, offsets, 0.5))
    assert as_tuples(ended)[0][:2] == (0.2, 0.7)
    # Below threshold, or beyond the frames' end, the offset head changes nothing.
    def first_note(threshold: float) -> tuple:
        return as_tuples(decode_notes(frames, onsets, velocities, FPS,
                                      note_ends=offset_ends(frames, offsets, threshold)))[0][:2]

    assert first_note(0.95) == (0.2, 1.0)
    frames[5:, key(A4)] = 0.0
    assert first_note(0.5) == (0.2, 0.5)
    # Where the frame head is surer than the gate, the offset head does not end the note.
    frames[2:10, key(A4)] = 0.8
    assert first_note(0.5) == (0.2, 1.0)
    gated_higher = offset_ends(frames, offsets, 0.5, frame_gate=0.9)
    assert as_tuples(decode_notes(frames, onsets, velocities, FPS, note_ends=gated_higher))[0][:2] == (0.2, 0.7)


def test_offset_correction_moves_every_end_but_never_within_a_frame_of_the_onset():
    frames, onsets, velocities = rolls()
    onsets[1, key(A4)] = onsets[3, key(60)] = 0.8
    frames[1:9, key(A4)] = 0.9  # 0.1 s -> 0.9 s
    frames[3:5, key(60)] = 0.9  # 0.3 s -> 0.5 s: a 0.3 s correction would end it before its onset
    velocities[1, key(A4)] = velocities[3, key(60)] = 0.5
    plain = decode_notes(frames, onsets, velocities, FPS)
    corrected = decode_notes(frames, onsets, velocities, FPS, offset_correction_s=-0.3)
    assert as_tuples(plain) == [(0.1, 0.9, A4, 64), (0.3, 0.5, 60, 64)]
    assert np.array_equal(corrected[["onset_s", "pitch", "velocity"]], plain[["onset_s", "pitch", "velocity"]])
    assert corrected["offset_s"] == pytest.approx([0.6, 0.4])  # 0.4: one frame after the onset at 0.3


def test_multi_frame_onset_run_is_one_note_with_max_velocity():
    frames, onsets, velocities = rolls()
    onsets[2:5, key(A4)] = 0.9  # onset active over frames 2-4, frame head silent
    velocities[2:5, key(A4)] = [40 / 127, 100 / 127, 70 / 127]
    notes = decode_notes(frames, onsets, velocities, FPS)
    assert as_tuples(notes) == [(0.2, 0.5, A4, 100)]


def test_thresholds_are_inclusive_and_adjustable():
    frames, onsets, velocities = rolls()
    onsets[1, key(A4)] = 0.5
    frames[1:4, key(A4)] = 0.5
    assert as_tuples(decode_notes(frames, onsets, velocities, FPS)) == [(0.1, 0.4, A4, 1)]
    assert len(decode_notes(frames, onsets, velocities, FPS, onset_threshold=0.6)) == 0


@pytest.mark.parametrize("velocity, midi", [(0.0, 1), (1 / 127, 1), (0.5, 64), (1.0, 127),
                                            (1.3, 127), (100.4 / 127, 100)])
def test_velocity_mapping(velocity, midi):
    frames, onsets, velocities = rolls()
    onsets[0, key(A4)] = 1.0
    velocities[0, key(A4)] = velocity
    assert decode_notes(frames, onsets, velocities, FPS)["velocity"].tolist() == [midi]


def test_note_sounding_at_last_frame_ends_at_the_end():
    frames, onsets, velocities = rolls(12)
    onsets[9, key(21)] = 1.0
    frames[9:, key(21)] = 1.0
    onsets[11, key(108)] = 1.0
    notes = decode_notes(frames, onsets, velocities, FPS)
    assert as_tuples(notes) == [(0.9, 1.2, 21, 1), (1.1, 1.2, 108, 1)]


def test_notes_sorted_by_onset_then_pitch():
    frames, onsets, velocities = rolls()
    onsets[4, key(60)] = onsets[4, key(50)] = onsets[1, key(80)] = 1.0
    notes = decode_notes(frames, onsets, velocities, FPS)
    assert notes["pitch"].tolist() == [80, 50, 60]


def test_empty_input():
    frames, onsets, velocities = rolls(0)
    notes = decode_notes(frames, onsets, velocities, FPS)
    assert len(notes) == 0 and notes.dtype == NOTE_DTYPE


def test_shape_mismatch_raises():
    frames, onsets, velocities = rolls(12)
    with pytest.raises(ValueError):
        decode_notes(frames, onsets[:10], velocities, FPS)
    with pytest.raises(ValueError):
        decode_notes(frames[:, :80], onsets[:, :80], velocities[:, :80], FPS)


def test_notes_to_roll_rounds_to_nearest_frame_and_ignores_off_piano():
    notes = np.array([(0.14, 0.36, A4, 64),   # frames 1..3 (end 4 exclusive)
                      (0.51, 0.52, 60, 64),   # zero-length after rounding: one frame
                      (0.0, 0.5, 20, 64),     # below A0
                      (0.0, 0.5, 109, 64),    # above C8
                      (0.8, 5.0, 108, 64)],   # cut at the roll's end
                     dtype=NOTE_DTYPE)
    roll = notes_to_roll(notes, FPS, 10)
    assert roll.shape == (10, PIANO_KEYS) and roll.dtype == bool
    assert np.flatnonzero(roll[:, key(A4)]).tolist() == [1, 2, 3]
    assert np.flatnonzero(roll[:, key(60)]).tolist() == [5]
    assert np.flatnonzero(roll[:, key(108)]).tolist() == [8, 9]
    assert roll.sum() == 3 + 1 + 2


def test_notes_to_roll_keeps_overlapping_notes_active():
    notes = np.array([(0.0, 0.5, A4, 64), (0.2, 0.3, A4, 64)], dtype=NOTE_DTYPE)
    assert np.flatnonzero(notes_to_roll(notes, FPS, 8)[:, key(A4)]).tolist() == [0, 1, 2, 3, 4]


def random_notes(rng, num_frames: int, frames_per_second: float) -> np.ndarray:
    """Non-overlapping notes per pitch on frame times, some back to back (re-onsets)."""
    rows = []
    for pitch in rng.choice(np.arange(21, 109), size=int(rng.integers(1, 12)), replace=False):
        frame = int(rng.integers(0, 5))
        while True:
            length = int(rng.integers(1, 10))
            if frame + length > num_frames:
                break
            rows.append((frame / frames_per_second, (frame + length) / frames_per_second,
                         pitch, int(rng.integers(1, 128))))
            # Back to back is fine unless the onset runs would touch (a one-frame note).
            frame += length + int(rng.integers(0 if length > 1 else 1, 4))
    return np.sort(np.array(rows, dtype=NOTE_DTYPE), order=["onset_s", "pitch"])


@pytest.mark.parametrize("seed", range(25))
def test_decoding_rolls_made_from_notes_gives_the_notes_back(seed):
    rng = np.random.default_rng(seed)
    frames_per_second = [31.25, 10.0, 86.1328125][seed % 3]
    num_frames = 60
    notes = random_notes(rng, num_frames, frames_per_second)
    frames = notes_to_roll(notes, frames_per_second, num_frames).astype(float)
    onsets = np.zeros_like(frames)
    velocities = rng.uniform(0, 1, size=frames.shape)  # noise off the onset frames is ignored
    onset_frames = np.rint(notes["onset_s"] * frames_per_second).astype(int)
    keys = notes["pitch"] - PIANO_LOWEST_PITCH
    onsets[onset_frames, keys] = 1.0
    velocities[onset_frames, keys] = notes["velocity"] / 127
    decoded = decode_notes(frames, onsets, velocities, frames_per_second)
    assert decoded["pitch"].tolist() == notes["pitch"].tolist()
    assert decoded["velocity"].tolist() == notes["velocity"].tolist()
    np.testing.assert_allclose(decoded["onset_s"], notes["onset_s"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(decoded["offset_s"], notes["offset_s"], rtol=0, atol=1e-12)
