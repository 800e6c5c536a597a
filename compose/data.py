"""Pieces for the composers: from a MIDI folder (with an optional split CSV) or from the Beam
composition TFRecords; random augmented crops for training; whole pieces for evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from compose.config import ComposerConfig
from compose.tokens import END, PAD, augment, encode
from stages.midi import MIDI_SUFFIXES, NoteSequence, apply_sustain, read_note_sequence

TRANSPOSE_SEMITONES = 3
STRETCH = 0.05


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


def even_spread(pieces: list, count: int | None) -> list:
    """At most `count` pieces spread evenly over a (sorted) list: a fixed subset, so that scores
    on it stay comparable between epochs and checkpoints."""
    if not count or len(pieces) <= count:
        return list(pieces)
    return pieces[:: -(-len(pieces) // count)]


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


class RandomCrops(keras.utils.PyDataset):
    """Batches of (inputs, targets): `sequence_length` tokens of a random stretch of a random
    piece, transposed by up to +-3 semitones and time-stretched by up to +-5%, targets shifted
    by one token. Pieces are drawn in proportion to their length."""

    def __init__(self, pieces: Sequence[NoteSequence], config: ComposerConfig, steps: int, seed: int = 0,
                 augmentation: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.pieces = [p for p in pieces if p.notes]
        if not self.pieces:
            raise ValueError("no piece with notes to train on")
        self.config, self.steps, self.augmentation = config, steps, augmentation
        self.durations = np.array([max(p.total_time, 1e-3) for p in self.pieces])
        # Events per second of each piece, to size the time window that yields enough tokens.
        self.density = np.array([max(4.0 * len(p.notes) / d, 1.0) for p, d in zip(self.pieces, self.durations)])
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def crop(self) -> np.ndarray:
        length = self.config.sequence_length + 1
        index = self.rng.choice(len(self.pieces), p=self.durations / self.durations.sum())
        piece, duration = self.pieces[index], self.durations[index]
        span = 1.5 * length / self.density[index]
        start = float(self.rng.uniform(0, max(0.0, duration - span)))
        part = window(piece, start, start + span)
        if self.augmentation:
            part = augment(part, int(self.rng.integers(-TRANSPOSE_SEMITONES, TRANSPOSE_SEMITONES + 1)),
                           float(self.rng.uniform(1 - STRETCH, 1 + STRETCH)))
        tokens = encode(part, sustain=False)
        if start + span >= duration:  # the window reaches the end of the piece
            tokens = np.append(tokens, END)
        out = np.full(length, PAD, np.int32)
        out[: min(length, len(tokens))] = tokens[:length]
        return out

    def __getitem__(self, step: int):
        batch = np.stack([self.crop() for _ in range(self.config.batch_size)])
        return batch[:, :-1], batch[:, 1:]


def piece_tokens(piece: NoteSequence) -> np.ndarray:
    """A whole (sustain-extended) piece as tokens, ending with END."""
    return np.append(encode(piece, sustain=False), END).astype(np.int32)
