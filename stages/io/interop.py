"""The MIDI objects the public API takes and returns (pretty_midi.PrettyMIDI, paths) <-> the
NoteSequence the stages work on."""

from __future__ import annotations

import os
from pathlib import Path

import pretty_midi
from note_seq import midi_io

from stages.io.midi import NoteSequence, read_note_sequence


def as_note_sequence(midi: pretty_midi.PrettyMIDI | NoteSequence | Path | str) -> NoteSequence:
    """A PrettyMIDI object, a NoteSequence or the path of a MIDI file, as a NoteSequence."""
    if isinstance(midi, NoteSequence):
        return midi
    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi_io.midi_to_note_sequence(midi)
    if isinstance(midi, (str, os.PathLike)):
        return read_note_sequence(Path(midi))
    raise TypeError("expected a pretty_midi.PrettyMIDI, a NoteSequence or a MIDI file's path, "
                    f"not {type(midi).__name__}")


def to_pretty_midi(sequence: NoteSequence) -> pretty_midi.PrettyMIDI:
    return midi_io.note_sequence_to_pretty_midi(sequence)
