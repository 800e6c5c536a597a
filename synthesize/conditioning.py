"""The WaveNet's conditioning: a piano roll at 250 frames per second over the 88 keys.

Channels 0-87: the sounding note's onset velocity / 127 for as long as it sounds (sustain pedal
included); channels 88-175: the onset velocity / 127 at the frame where a note starts. Frame t
covers the audio samples [t * 64, (t + 1) * 64) at 16 kHz, so a note is placed at the frame
holding its first sample.
"""

from __future__ import annotations

import numpy as np

from stages.io.midi import NoteSequence, apply_sustain, notes_from_sequence
from stages.io.pianoroll import piano_roll

# FluidSynth's MIDI player acts on an event at the first block that starts at least one block
# minus half a MIDI tick after it (measured on 180 notes at 220, 384 and 960 ticks per beat: all
# exact with the file's own tick). ASAP's files tick every 0.3-1.3 ms; half of a typical one:
HALF_TICK_S = 0.00055


def snap_to_render_grid(notes: np.ndarray, grid_samples: int, sample_rate_hz: int) -> np.ndarray:
    """Notes moved to where FluidSynth, which renders the training audio, starts and stops them:
    only at the start of one of its 64-sample blocks, 3-7 ms after the MIDI time. Aligned this way,
    the harmonic excitation's phase is the rendered note's phase; with the exact MIDI times each
    note's phase was unknowable within 4 ms, and the network learned to play near its mixture's
    mean: quietly. grid_samples 0: unchanged."""
    if grid_samples <= 0:
        return notes
    snapped = notes.copy()
    grid_s = grid_samples / sample_rate_hz
    for key in ("onset_s", "offset_s"):
        snapped[key] = np.ceil((notes[key] + grid_s - HALF_TICK_S) / grid_s) * grid_s
    return snapped


def conditioning_roll(notes: np.ndarray, num_frames: int, roll_rate_hz: int) -> np.ndarray:
    """Note array (sustain applied) -> (num_frames, 176) float32."""
    # piano_roll rounds times to the nearest frame centre; shifting by half a frame turns that
    # into "the frame that holds the time".
    shifted = notes.copy()
    shifted["onset_s"] -= 0.5 / roll_rate_hz
    shifted["offset_s"] -= 0.5 / roll_rate_hz
    roll = piano_roll(shifted, num_frames, roll_rate_hz)
    return np.concatenate([roll.held_velocities, roll.velocities], axis=1).astype(np.float32) / 127.0


def sequence_roll(sequence: NoteSequence, roll_rate_hz: int, tail_seconds: float = 1.0) -> np.ndarray:
    """A whole performance's roll, lasting until its last note ends plus a release tail."""
    return performance_roll(notes_from_sequence(apply_sustain(sequence)), roll_rate_hz, tail_seconds)


def performance_roll(notes: np.ndarray, roll_rate_hz: int, tail_seconds: float = 1.0) -> np.ndarray:
    """sequence_roll of a note array (sustain applied)."""
    end = float(notes["offset_s"].max()) if len(notes) else 0.0
    return conditioning_roll(notes, int(np.ceil((end + tail_seconds) * roll_rate_hz)), roll_rate_hz)


def piece_seconds(sequence: NoteSequence, tail_seconds: float = 1.0) -> float:
    """How long sequence_roll's roll lasts, in seconds, from the notes' times alone (sustain
    applied): what a piece will cost, known before a frame of it is allocated."""
    notes = notes_from_sequence(apply_sustain(sequence))
    end = float(notes["offset_s"].max()) if len(notes) else 0.0
    return end + tail_seconds
