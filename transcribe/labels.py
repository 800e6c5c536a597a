"""Training targets from notes: frame, onset, offset and velocity rolls over the 88 keys.

Frame t is the spectrogram frame centred at t / frames_per_second. A note occupies frames
round(onset * fps) .. round(offset * fps) - 1 (rounding half up) (at least one); its onset label is its first frame
and its offset label the frame where it ends. A note whose onset is negative (already sounding
when the example starts; see stages.midi.crop) has frames but no onset label.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stages.midi import PIANO_KEYS, PIANO_LOWEST_PITCH


@dataclasses.dataclass
class Labels:
    frames: np.ndarray  # (T, 88) uint8 0/1
    onsets: np.ndarray  # (T, 88) uint8 0/1
    offsets: np.ndarray  # (T, 88) uint8 0/1
    velocities: np.ndarray  # (T, 88) uint8 MIDI velocity at onset frames, 0 elsewhere


def make_labels(notes: np.ndarray, num_frames: int, frames_per_second: float) -> Labels:
    """`notes`: a stages.midi note array (sustain already applied) -> Labels of `num_frames`."""
    shape = (num_frames, PIANO_KEYS)
    labels = Labels(*(np.zeros(shape, np.uint8) for _ in range(4)))
    for onset_s, offset_s, pitch, velocity in notes:
        key = int(pitch) - PIANO_LOWEST_PITCH
        if not 0 <= key < PIANO_KEYS:
            continue
        start = _frame(onset_s, frames_per_second)
        end = max(start + 1, _frame(offset_s, frames_per_second))
        first, last = max(start, 0), min(end, num_frames)
        if first >= last:
            continue
        labels.frames[first:last, key] = 1
        if onset_s >= 0 and start < num_frames:
            labels.onsets[start, key] = 1
            labels.velocities[start, key] = max(labels.velocities[start, key], int(velocity))
        if end < num_frames:
            labels.offsets[end, key] = 1
    return labels


def _frame(seconds: float, frames_per_second: float) -> int:
    # Round half up, as transcribe.decode.notes_to_roll does, so labels and scoring agree.
    return int(np.floor(seconds * frames_per_second + 0.5))
