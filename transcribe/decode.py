"""Per-frame model outputs -> notes (Onsets and Frames decoding), and notes -> piano roll.

A note starts only where the onset head fires and lasts while the frame head (or the
same onset) stays active, so frame activity alone never creates a note. With an offset threshold,
the offset head may end a note sooner: after the first frame where it fires while the frame head
is unsure (below a frame gate, chosen on validation with the thresholds), at least
OFFSET_MIN_FRAMES after the onset. (A low frame threshold keeps quiet, decaying notes sounding;
the offset head then cuts those the frame head would hold too long. On validation renders this
raised note-with-offset F1 from 0.62 to 0.70; the gate keeps it from cutting notes the frame
head clearly hears, as it did on the real MAESTRO recording without one.) An offset correction,
chosen on validation like the thresholds, moves every note end by a fixed time (never to within a
frame of its onset).
"""

from __future__ import annotations

import numpy as np

from stages.io.midi import NOTE_DTYPE, PIANO_KEYS, PIANO_LOWEST_PITCH

OFFSET_MIN_FRAMES = 2  # the offset head also stirs at a note's attack: never cut a note there


def decode_notes(frame_probs: np.ndarray, onset_probs: np.ndarray, velocities: np.ndarray,
                 frames_per_second: float, frame_threshold: float = 0.5,
                 onset_threshold: float = 0.5, note_ends: np.ndarray | None = None,
                 offset_correction_s: float = 0.0) -> np.ndarray:
    """Notes (NOTE_DTYPE, sorted by onset then pitch) from three (frames, 88) arrays.

    `velocities` are in [0, 1] (MIDI velocity / 127); a note's velocity is the largest
    value over its onset run. `note_ends`, a boolean (frames, 88) mask from `offset_ends`, lets
    the offset head end notes. `offset_correction_s` is added to every note end, which stays at
    least a frame after its onset.
    """
    # float32 is exact enough for thresholds, and an hour of three (frames, 88) arrays in
    # float64 would cost a quarter of a gigabyte more.
    frame_probs, onset_probs, velocities = (np.asarray(a, dtype=np.float32)
                                            for a in (frame_probs, onset_probs, velocities))
    if frame_probs.ndim != 2 or frame_probs.shape[1] != PIANO_KEYS:
        raise ValueError(f"expected (frames, {PIANO_KEYS}) arrays, got {frame_probs.shape}")
    if onset_probs.shape != frame_probs.shape or velocities.shape != frame_probs.shape:
        raise ValueError(f"shapes differ: frames {frame_probs.shape}, onsets {onset_probs.shape},"
                         f" velocities {velocities.shape}")
    num_frames = frame_probs.shape[0]
    onset_active = onset_probs >= onset_threshold
    previous_onset = np.zeros_like(onset_active)
    previous_onset[1:] = onset_active[:-1]
    onset_start = onset_active & ~previous_onset
    # Frames of the note's own onset run hold it even when the frame head is below threshold;
    # any onset-active frame that is not a start belongs to the run of the sounding note.
    sustained = (frame_probs >= frame_threshold) | onset_active
    note_stops = ~sustained | onset_start
    run_stops = ~onset_active
    if note_ends is not None and note_ends.shape != frame_probs.shape:
        raise ValueError(f"shapes differ: frames {frame_probs.shape}, note ends {note_ends.shape}")

    rows = []
    for key in range(PIANO_KEYS):
        starts = np.flatnonzero(onset_start[:, key])
        if not len(starts):
            continue
        ends = _first_after(np.flatnonzero(note_stops[:, key]), starts, num_frames)
        if note_ends is not None:  # the note ends after the frame where its offset fires
            cuts = _first_after(np.flatnonzero(note_ends[:, key]), starts + OFFSET_MIN_FRAMES - 1, num_frames) + 1
            ends = np.minimum(ends, cuts)
        run_ends = _first_after(np.flatnonzero(run_stops[:, key]), starts, num_frames)
        for start, end, run_end in zip(starts, ends, run_ends):
            velocity = float(velocities[start:run_end, key].max())
            end_s = max(end / frames_per_second + offset_correction_s, (start + 1) / frames_per_second)
            rows.append((start / frames_per_second, end_s,
                         PIANO_LOWEST_PITCH + key, _midi_velocity(velocity)))
    notes = np.array(rows, dtype=NOTE_DTYPE)
    return np.sort(notes, order=["onset_s", "pitch"])


def notes_between(starts: np.ndarray, ends: np.ndarray, velocities: np.ndarray,
                  frames_per_second: float) -> np.ndarray:
    """Notes (NOTE_DTYPE, sorted by onset then pitch) from (N, 2) (onset frame, key) rows and
    their (N,) exclusive end frames; a note's velocity is the velocity head's at its onset."""
    starts = np.asarray(starts, np.int64).reshape(-1, 2)
    velocity = np.asarray(velocities, np.float32)[starts[:, 0], starts[:, 1]] if len(starts) else np.zeros(0)
    notes = np.zeros(len(starts), dtype=NOTE_DTYPE)
    notes["onset_s"] = starts[:, 0] / frames_per_second
    notes["offset_s"] = np.maximum(ends, starts[:, 0] + 1) / frames_per_second
    notes["pitch"] = PIANO_LOWEST_PITCH + starts[:, 1]
    notes["velocity"] = np.clip(np.rint(velocity * 127), 1, 127)
    return np.sort(notes, order=["onset_s", "pitch"])


def offset_ends(frame_probs: np.ndarray, offset_probs: np.ndarray, offset_threshold: float | None,
                frame_gate: float = 0.7) -> np.ndarray | None:
    """Where the offset head may end a note: it fires while the frame head is below `frame_gate`
    (where the frame head is surer, the note sounds whatever the offset head says). None when
    there is no offset threshold (the frame head alone ends notes)."""
    if offset_threshold is None:
        return None
    return (np.asarray(offset_probs) >= offset_threshold) & (np.asarray(frame_probs) < frame_gate)


def _first_after(stops: np.ndarray, starts: np.ndarray, num_frames: int) -> np.ndarray:
    """For each start frame, the first stop frame after it, or num_frames when none."""
    index = np.searchsorted(stops, starts, side="right")
    padded = np.append(stops, num_frames)
    return padded[index]


def _midi_velocity(velocity: float) -> int:
    """A [0, 1] velocity as MIDI 1-127 (0 would mean note-off)."""
    return int(np.clip(np.rint(velocity * 127), 1, 127))


def notes_to_roll(notes: np.ndarray, frames_per_second: float, num_frames: int) -> np.ndarray:
    """Boolean (num_frames, 88) roll: a note covers frames round(onset) to round(offset), excl.

    Every note covers at least its onset frame; pitches off the 88 keys are ignored.
    """
    roll_counts = np.zeros((num_frames + 1, PIANO_KEYS), dtype=np.int64)
    keys = notes["pitch"].astype(np.int64) - PIANO_LOWEST_PITCH
    on_piano = (keys >= 0) & (keys < PIANO_KEYS)
    notes, keys = notes[on_piano], keys[on_piano]
    # Round half up (not numpy's half-to-even) so shifting all notes by a frame shifts the roll.
    starts = np.floor(notes["onset_s"] * frames_per_second + 0.5).astype(np.int64)
    ends = np.floor(notes["offset_s"] * frames_per_second + 0.5).astype(np.int64)
    ends = np.maximum(ends, starts + 1)
    starts, ends = np.clip(starts, 0, num_frames), np.clip(ends, 0, num_frames)
    # Count notes sounding per cell with +1/-1 edges, so overlapping notes stay active.
    np.add.at(roll_counts, (starts, keys), 1)
    np.add.at(roll_counts, (ends, keys), -1)
    return np.cumsum(roll_counts, axis=0)[:num_frames] > 0
