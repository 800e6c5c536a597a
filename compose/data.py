"""Pieces for the composers: from a MIDI folder (with an optional split CSV) or from the Beam
composition TFRecords, encoded whole: at three time stretches for training (compose.corpus cuts
the crops), as they are for evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from compose.corpus import even_spread  # noqa: F401  (part of this module's interface)
from compose.tokens import END, augment, encode
from stages.midi import MIDI_SUFFIXES, NoteSequence, apply_sustain, read_note_sequence

# Time stretches of +-5% (the paper's augmentation, with transposition by +-3 semitones); three
# encodings of each piece, as a random stretch per crop would need note-seq at every step.
STRETCHES = (0.95, 1.0, 1.05)


def load_pieces(source: Path | str, split: str | None = None, split_csv: Path | str | None = None) -> list[NoteSequence]:
    """Sustain-extended NoteSequences of a split, from a folder of MIDI (a split CSV chooses the
    files; without one, all) or from a `w2m2w maestro preprocess` output (its composition shards)."""
    source = Path(source)
    if (source / "composition").is_dir():
        from maestro import tfrecord
        from maestro.examples import decode_composition

        pieces = []
        for shard in sorted((source / "composition").glob(f"{split or 'train'}.tfrecord-*")):
            if shard.name.endswith(".partial"):
                continue
            with shard.open("rb") as handle:
                pieces += [decode_composition(data).sequence for data in tfrecord.read_records(handle)]
        return [apply_sustain(piece) for piece in pieces]
    if split_csv:
        from maestro.render import read_split_file

        entries = read_split_file(split_csv)
        paths = sorted(path for path, entry in entries.items() if split is None or entry.split == split)
    else:
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
    return [apply_sustain(read_note_sequence(path)) for path in paths]


def window(sequence: NoteSequence, start_s: float, end_s: float) -> NoteSequence:
    """Notes that start inside [start_s, end_s), shifted to start at 0 (offsets kept whole)."""
    part = NoteSequence(ticks_per_quarter=sequence.ticks_per_quarter)
    for note in sequence.notes:
        if start_s <= note.start_time < end_s:
            copy = part.notes.add()
            copy.CopyFrom(note)
            copy.start_time -= start_s
            copy.end_time -= start_s
    part.total_time = max((n.end_time for n in part.notes), default=0.0)
    return part


def encode_pieces(pieces: Sequence[NoteSequence], stretches: Sequence[float] = STRETCHES,
                  progress: bool = False) -> list[np.ndarray]:
    """Each piece with notes encoded whole (piece_tokens) once per time stretch: what
    compose.corpus.TokenCrops cuts training crops from (it transposes them itself)."""
    work = [(piece, stretch) for stretch in stretches for piece in pieces if piece.notes]
    return [piece_tokens(augment(piece, 0, stretch))
            for piece, stretch in tqdm(work, desc="encoding pieces", unit="piece", disable=not progress)]


def piece_tokens(piece: NoteSequence) -> np.ndarray:
    """A whole (sustain-extended) piece as tokens, ending with END."""
    return np.append(encode(piece, sustain=False), END).astype(np.int32)
