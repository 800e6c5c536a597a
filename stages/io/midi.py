"""MIDI <-> NoteSequence <-> note arrays, with the sustain pedal, in one place.

A note array is a structured numpy array sorted by onset with fields
`onset_s`, `offset_s` (seconds), `pitch` (MIDI number) and `velocity` (1-127).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from note_seq import midi_io, sequences_lib
from note_seq.protobuf import music_pb2

from stages.contract import InputError

MIDI_SUFFIXES = (".mid", ".midi")
NOTE_DTYPE = np.dtype([("onset_s", "f8"), ("offset_s", "f8"), ("pitch", "i2"), ("velocity", "i2")])
SUSTAIN_CONTROL = 64
PIANO_LOWEST_PITCH = 21  # A0
PIANO_KEYS = 88

NoteSequence = music_pb2.NoteSequence


def read_note_sequence(path: Path | str) -> NoteSequence:
    """Read a MIDI file; InputError names the reason when it is empty or not MIDI."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such MIDI file: {path}")
    return parse_midi(path.read_bytes())


def parse_midi(data: bytes) -> NoteSequence:
    """A NoteSequence from the bytes of a MIDI file."""
    if not data:
        raise InputError("empty file (0 bytes)")
    check_midi_length(data)
    try:
        return midi_io.midi_to_note_sequence(data)
    except Exception as error:  # mido and pretty_midi raise many types on bad bytes
        raise InputError(f"not a readable MIDI file ({type(error).__name__}: {error})") from error


#: pretty_midi, which note-seq reads MIDI with, allocates 8 bytes for every tick up to the last
#: event: 2**25 ticks (hours of music at any usual resolution) is 270 MB.
MAX_MIDI_TICKS = 2**25


def check_midi_length(data: bytes) -> None:
    """InputError for a MIDI file whose last event lies so many ticks in that reading it would
    allocate gigabytes (a few bytes can put a note 1000 hours in); from the event times alone. A file
    that cannot be parsed is left to the reader, which names the reason."""
    import io

    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
        last_tick = max((sum(message.time for message in track) for track in midi.tracks), default=0)
    except Exception:  # noqa: BLE001
        return
    if last_tick > MAX_MIDI_TICKS:
        beats = last_tick / midi.ticks_per_beat
        raise InputError(f"the MIDI file's last event lies {last_tick:,} ticks in ({beats:,.0f} beats): more than "
                         f"the {MAX_MIDI_TICKS:,} ticks read (hours of music); refused before reading it")


def write_midi(sequence: NoteSequence, path: Path | str) -> None:
    """Write a NoteSequence as a standard MIDI file (path should be a stage temporary)."""
    midi_io.note_sequence_to_midi_file(sequence, str(path))


def apply_sustain(sequence: NoteSequence) -> NoteSequence:
    """A copy whose notes last while the sustain pedal (CC 64) holds them, as a piano sounds."""
    return sequences_lib.apply_sustain_control_changes(sequence, SUSTAIN_CONTROL)


def notes_from_sequence(sequence: NoteSequence) -> np.ndarray:
    """The sequence's (non-drum) notes as a note array, sorted by onset then pitch."""
    notes = np.array(
        [(n.start_time, n.end_time, n.pitch, n.velocity) for n in sequence.notes if not n.is_drum],
        dtype=NOTE_DTYPE,
    )
    return np.sort(notes, order=["onset_s", "pitch"])


def sequence_from_notes(notes: np.ndarray, ticks_per_quarter: int = 220) -> NoteSequence:
    """A piano NoteSequence holding the notes of a note array."""
    sequence = NoteSequence(ticks_per_quarter=ticks_per_quarter)
    sequence.tempos.add(qpm=120.0)
    for onset, offset, pitch, velocity in notes:
        sequence.notes.add(start_time=float(onset), end_time=float(offset), pitch=int(pitch),
                           velocity=int(velocity), instrument=0, program=0)
    sequence.total_time = float(notes["offset_s"].max()) if len(notes) else 0.0
    return sequence


def crop(sequence: NoteSequence, start_s: float, end_s: float) -> NoteSequence:
    """The part of a sequence between two times, shifted to start at 0.

    Notes that sound across `start_s` keep their true onset, which is then negative: a label
    maker can tell a note already sounding from a new onset. Offsets are cut at the end.
    Control changes inside the window are kept; the pedal state at the start is restated at 0.
    """
    length = end_s - start_s
    cropped = NoteSequence(ticks_per_quarter=sequence.ticks_per_quarter)
    cropped.tempos.add(qpm=sequence.tempos[0].qpm if sequence.tempos else 120.0)
    for note in sequence.notes:
        if note.end_time <= start_s or note.start_time >= end_s:
            continue
        copy = cropped.notes.add()
        copy.CopyFrom(note)
        copy.start_time = note.start_time - start_s
        copy.end_time = min(note.end_time, end_s) - start_s
    last_before: dict[tuple[int, int], music_pb2.NoteSequence.ControlChange] = {}
    for change in sorted(sequence.control_changes, key=lambda c: c.time):
        key = (change.instrument, change.control_number)
        if change.time < start_s:
            last_before[key] = change
        elif change.time < end_s:
            copy = cropped.control_changes.add()
            copy.CopyFrom(change)
            copy.time = change.time - start_s
    for change in last_before.values():
        copy = cropped.control_changes.add()
        copy.CopyFrom(change)
        copy.time = 0.0
    cropped.total_time = length
    return cropped


def sounding_intervals(sequence: NoteSequence) -> list[tuple[float, float]]:
    """Merged (start, end) spans in which at least one note sounds, in time order."""
    spans = sorted((n.start_time, n.end_time) for n in sequence.notes if n.end_time > n.start_time)
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


MAX_NOTE_SECONDS = 60.0  # longer than any piano note rings: a note-off that never came


def playable(sequence: NoteSequence, max_note_seconds: float = MAX_NOTE_SECONDS) -> NoteSequence:
    """The sequence without drum notes, refused (InputError) when nothing is left for a piano or
    when a note lasts longer than `max_note_seconds` (a stuck note would make a later stage plan
    an hour of music)."""
    if not sequence.notes:
        raise InputError("MIDI file has no notes")
    drums = sum(note.is_drum for note in sequence.notes)
    if drums == len(sequence.notes):
        raise InputError(f"MIDI file holds only drum notes ({drums} on channel 10): nothing for a piano to play")
    longest = max((n for n in sequence.notes if not n.is_drum), key=lambda n: n.end_time - n.start_time)
    if longest.end_time - longest.start_time > max_note_seconds:
        raise InputError(f"a note lasts {longest.end_time - longest.start_time:.0f} s (pitch {longest.pitch} at "
                         f"{longest.start_time:.1f} s; a stuck note?): notes longer than {max_note_seconds:.0f} s "
                         f"are refused")
    if not drums:
        return sequence
    piano = NoteSequence()
    piano.CopyFrom(sequence)
    del piano.notes[:]
    piano.notes.extend(note for note in sequence.notes if not note.is_drum)
    return piano
