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
from note_seq.constants import STANDARD_PPQ
from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding

from compose.vocabulary import (
    END,
    NOTE_OFF,
    NOTE_ON,
    PAD,
    PIANO_RANGE,
    SPECIAL_TOKENS,
    TIME_SHIFT,
    VELOCITY,
    VOCAB_SIZE,
)
from stages.io.midi import NoteSequence, apply_sustain

STEPS_PER_SECOND = 100
MAX_SHIFT_STEPS = 100
VELOCITY_BINS = 32
MAX_UNRELEASED_S = 5.0

ENCODING = PerformanceOneHotEncoding(num_velocity_bins=VELOCITY_BINS, max_shift_steps=MAX_SHIFT_STEPS)
_Event = performance_lib.PerformanceEvent
assert (VOCAB_SIZE, NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY) == (
    SPECIAL_TOKENS + ENCODING.num_classes,
    *(SPECIAL_TOKENS + ENCODING.encode_event(_Event(kind, value)) for kind, value in
      ((_Event.NOTE_ON, 0), (_Event.NOTE_OFF, 0), (_Event.TIME_SHIFT, 1), (_Event.VELOCITY, 1)))), \
    "compose/vocabulary.py no longer matches note-seq's performance encoding"


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
    _one_note_per_key(quantized)
    performance = performance_lib.Performance(quantized, start_step=0, num_velocity_bins=VELOCITY_BINS,
                                              max_shift_steps=MAX_SHIFT_STEPS)
    return np.array([SPECIAL_TOKENS + ENCODING.encode_event(event) for event in performance], dtype=np.int32)


def _one_note_per_key(quantized: NoteSequence) -> None:
    """As on a piano, a key struck again while it sounds ends its note there (on the 10 ms grid,
    where nearly simultaneous strikes meet), so every key sounds one note at a time."""
    kept = []
    for note in sorted(quantized.notes, key=lambda n: (n.pitch, n.quantized_start_step, n.quantized_end_step)):
        previous = kept[-1] if kept and kept[-1].pitch == note.pitch else None
        if previous is not None and previous.quantized_end_step > note.quantized_start_step:
            previous.quantized_end_step = note.quantized_start_step
            previous.end_time = note.start_time
            if previous.quantized_end_step <= previous.quantized_start_step:
                kept.pop()
        kept.append(note)
    copies = [type(note)() for note in kept]
    for duplicate, note in zip(copies, kept):
        duplicate.CopyFrom(note)
    del quantized.notes[:]
    quantized.notes.extend(copies)


def decode(tokens: Sequence[int], max_unreleased_s: float = MAX_UNRELEASED_S) -> NoteSequence:
    """Tokens -> NoteSequence; padding and END are skipped.

    Encoded music has one note per key at a time, each released (`encode` ends a note whose key
    is struck again); sampled music need not be. So a
    note-on of a key still sounding ends its note first, as striking a key again does on a piano
    (pairing note-offs first in, first out would hold notes for many seconds), and a note never
    released ends with the piece, at most `max_unreleased_s` after it began (Magenta caps every
    sampled note at 5 s; released notes keep their length here)."""
    Event = performance_lib.PerformanceEvent
    sequence = NoteSequence(ticks_per_quarter=STANDARD_PPQ)
    sounding: dict[int, tuple[int, int]] = {}  # pitch -> (start step, velocity)
    step, velocity = 0, 64

    def end(pitch: int, at: int, limit: float | None = None) -> None:
        start, note_velocity = sounding.pop(pitch)
        if at > start:
            start_s = start / STEPS_PER_SECOND
            end_s = at / STEPS_PER_SECOND if limit is None else min(at / STEPS_PER_SECOND, start_s + limit)
            sequence.notes.add(pitch=pitch, velocity=note_velocity, start_time=start_s, end_time=end_s)
            sequence.total_time = max(sequence.total_time, end_s)

    for token in tokens:
        if int(token) < SPECIAL_TOKENS:
            continue
        event = ENCODING.decode_event(int(token) - SPECIAL_TOKENS)
        if event.event_type == Event.NOTE_ON:
            if event.event_value in sounding:
                end(event.event_value, step)
            sounding[event.event_value] = (step, velocity)
        elif event.event_type == Event.NOTE_OFF and event.event_value in sounding:
            end(event.event_value, step)
        elif event.event_type == Event.TIME_SHIFT:
            step += event.event_value
        elif event.event_type == Event.VELOCITY:
            velocity = performance_lib.velocity_bin_to_velocity(event.event_value, VELOCITY_BINS)
    for pitch in list(sounding):
        end(pitch, step, max_unreleased_s)
    return sequence


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


_EVENT_NAMES = {performance_lib.PerformanceEvent.NOTE_ON: "note-on",
                performance_lib.PerformanceEvent.NOTE_OFF: "note-off",
                performance_lib.PerformanceEvent.TIME_SHIFT: "shift",
                performance_lib.PerformanceEvent.VELOCITY: "velocity"}


def describe(token: int) -> str:
    """A token's meaning for people reading a sequence, e.g. "note-on 60" or "shift 25"."""
    if token in (PAD, END):
        return "PAD" if token == PAD else "END"
    event = ENCODING.decode_event(int(token) - SPECIAL_TOKENS)
    return f"{_EVENT_NAMES[event.event_type]} {event.event_value}"
