"""Piano rolls over the 88 keys from notes, shared by the transcriber (its training targets, at
31.25 frames per second) and the synthesizer (its conditioning, at 250 frames per second).

Frame t is the frame centred at t / frames_per_second. A note occupies frames
round(onset * fps) .. round(offset * fps) - 1 (rounding half up) (at least one); its onset mark is its first frame
and its offset mark the frame where it ends. A note whose onset is negative (already sounding
when the example starts; see stages.io.midi.crop) has frames but no onset mark.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stages.io.midi import PIANO_KEYS, PIANO_LOWEST_PITCH


@dataclasses.dataclass
class PianoRoll:
    frames: np.ndarray  # (T, 88) uint8 0/1: the key sounds
    onsets: np.ndarray  # (T, 88) uint8 0/1
    offsets: np.ndarray  # (T, 88) uint8 0/1
    velocities: np.ndarray  # (T, 88) uint8 MIDI velocity at onset frames, 0 elsewhere
    held_velocities: np.ndarray  # (T, 88) uint8 the sounding note's onset velocity, 0 when silent


def piano_roll(notes: np.ndarray, num_frames: int, frames_per_second: float) -> PianoRoll:
    """`notes`: a stages.io.midi note array (sustain already applied) -> rolls of `num_frames`."""
    shape = (num_frames, PIANO_KEYS)
    roll = PianoRoll(*(np.zeros(shape, np.uint8) for _ in range(5)))
    for onset_s, offset_s, pitch, velocity in notes:
        key = int(pitch) - PIANO_LOWEST_PITCH
        if not 0 <= key < PIANO_KEYS:
            continue
        start = _frame(onset_s, frames_per_second)
        end = max(start + 1, _frame(offset_s, frames_per_second))
        first, last = max(start, 0), min(end, num_frames)
        if first >= last:
            continue
        roll.frames[first:last, key] = 1
        roll.held_velocities[first:last, key] = int(velocity)
        if onset_s >= 0 and start < num_frames:
            roll.onsets[start, key] = 1
            roll.velocities[start, key] = max(roll.velocities[start, key], int(velocity))
        if end < num_frames:
            roll.offsets[end, key] = 1
    return roll


def _frame(seconds: float, frames_per_second: float) -> int:
    # Round half up, as transcribe.decode.notes_to_roll does, so roll and scoring agree.
    return int(np.floor(seconds * frames_per_second + 0.5))
