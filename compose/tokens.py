"""Performance-event tokens (Oore et al. 2018; Huang et al. 2018), through note-seq.

Vocabulary (390 tokens): 0 = padding, 1 = end of piece, then note-seq's performance one-hot
encoding shifted by 2: 128 note-ons, 128 note-offs, 100 time shifts of 10 ms up to 1 s, and 32
velocity bins. The sustain pedal is applied to note lengths before encoding, so a piece decodes
to the notes as they sounded, exactly up to the 10 ms grid and the velocity bins.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
from note_seq import performance_lib, sequences_lib
from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding

from stages.midi import NoteSequence, apply_sustain

PAD, END = 0, 1
SPECIAL_TOKENS = 2
STEPS_PER_SECOND = 100
MAX_SHIFT_STEPS = 100
VELOCITY_BINS = 32
PIANO_RANGE = (21, 108)

ENCODING = PerformanceOneHotEncoding(num_velocity_bins=VELOCITY_BINS, max_shift_steps=MAX_SHIFT_STEPS)
VOCAB_SIZE = SPECIAL_TOKENS + ENCODING.num_classes


def encode(sequence: NoteSequence, sustain: bool = True) -> np.ndarray:
    """A NoteSequence -> int32 tokens (without the END token)."""
    if sustain:
        sequence = apply_sustain(sequence)
    piano = NoteSequence()
    piano.CopyFrom(sequence)
    del piano.notes[:]
    piano.notes.extend(n for n in sequence.notes if not n.is_drum and n.end_time > n.start_time)
    del piano.control_changes[:]  # the pedal is already in the note lengths
    quantized = sequences_lib.quantize_note_sequence_absolute(piano, STEPS_PER_SECOND)
    performance = performance_lib.Performance(quantized, start_step=0, num_velocity_bins=VELOCITY_BINS,
                                              max_shift_steps=MAX_SHIFT_STEPS)
    return np.array([SPECIAL_TOKENS + ENCODING.encode_event(event) for event in performance], dtype=np.int32)


def decode(tokens: Sequence[int]) -> NoteSequence:
    """Tokens -> NoteSequence; padding and END are skipped, unmatched note-ons end with the piece."""
    performance = performance_lib.Performance(steps_per_second=STEPS_PER_SECOND, num_velocity_bins=VELOCITY_BINS,
                                              max_shift_steps=MAX_SHIFT_STEPS)
    for token in tokens:
        token = int(token)
        if token >= SPECIAL_TOKENS:
            performance.append(ENCODING.decode_event(token - SPECIAL_TOKENS))
    return performance.to_sequence(max_note_duration=None)


def augment(sequence: NoteSequence, semitones: int = 0, stretch: float = 1.0) -> NoteSequence:
    """Transposed by `semitones` (notes leaving the piano's range are dropped) and with every
    time multiplied by `stretch`."""
    low, high = PIANO_RANGE
    result = copy.deepcopy(sequence)
    del result.notes[:]
    for note in sequence.notes:
        pitch = note.pitch + semitones
        if low <= pitch <= high:
            moved = result.notes.add()
            moved.CopyFrom(note)
            moved.pitch = pitch
            moved.start_time = note.start_time * stretch
            moved.end_time = note.end_time * stretch
    for change in result.control_changes:
        change.time *= stretch
    result.total_time = sequence.total_time * stretch
    return result


_EVENT_NAMES = {performance_lib.PerformanceEvent.NOTE_ON: "note-on", performance_lib.PerformanceEvent.NOTE_OFF: "note-off",
                performance_lib.PerformanceEvent.TIME_SHIFT: "shift", performance_lib.PerformanceEvent.VELOCITY: "velocity"}


def describe(token: int) -> str:
    """A token's meaning for people reading a sequence, e.g. "note-on 60" or "shift 25"."""
    if token in (PAD, END):
        return "PAD" if token == PAD else "END"
    event = ENCODING.decode_event(int(token) - SPECIAL_TOKENS)
    return f"{_EVENT_NAMES[event.event_type]} {event.event_value}"
