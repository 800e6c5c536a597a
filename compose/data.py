"""Pieces for the composers: from a MIDI folder (with an optional split CSV) or from the Beam
composition TFRecords, encoded whole (compose.corpus cuts the training crops, and stretches and
transposes them), with their composers where known; and the token files that carry them to a
machine without note-seq."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from compose.conditioning import composer_index
from compose.corpus import STRETCHES, TokenFile, even_spread  # noqa: F401  (part of this module's interface)
from compose.tokens import END, augment, encode
from compose.vocabulary import COMPOSERS
from stages.io.midi import MIDI_SUFFIXES, NoteSequence, apply_sustain, read_note_sequence


def load_pieces(source: Path | str, split: str | None = None,
                split_csv: Path | str | None = None) -> list[NoteSequence]:
    """Sustain-extended NoteSequences of a split, from a folder of MIDI (a split CSV chooses the
    files; without one, all) or from a `w2m2w maestro preprocess` output (its composition shards)."""
    return load_labelled_pieces(source, split, split_csv)[0]


def load_labelled_pieces(source: Path | str, split: str | None = None,
                         split_csv: Path | str | None = None) -> tuple[list[NoteSequence], list[str]]:
    """`load_pieces` and each piece's composer (ASAP's label, e.g. "Chopin"; "" where unknown):
    from the split CSV, the composition records, or a folder of the path named after one."""
    source = Path(source)
    if (source / "composition").is_dir():
        from maestro import tfrecord
        from maestro.examples import decode_composition

        examples = []
        for shard in sorted((source / "composition").glob(f"{split or 'train'}.tfrecord-*")):
            if shard.name.endswith(".partial"):
                continue
            with shard.open("rb") as handle:
                examples += [decode_composition(data) for data in tfrecord.read_records(handle)]
        return [apply_sustain(e.sequence) for e in examples], [_label(e.composer) for e in examples]
    if split_csv:
        from maestro.render import read_split_file

        entries = read_split_file(split_csv)
        paths = sorted(path for path, entry in entries.items() if split is None or entry.split == split)
        composers = [_label(entries[path].composer) for path in paths]
    else:
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
        composers = [next((_label(part) for part in p.relative_to(source).parts if _label(part)), "") for p in paths]
    return [apply_sustain(read_note_sequence(path)) for path in paths], composers


def _label(name: str) -> str:
    index = composer_index(name)
    return "" if index is None else COMPOSERS[index]


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


def encode_pieces(pieces: Sequence[NoteSequence], stretches: Sequence[float] = (1.0,),
                  progress: bool = False) -> list[np.ndarray]:
    """Each piece with notes encoded whole (piece_tokens) once per time stretch: what
    compose.corpus.TokenCrops cuts training crops from (it transposes and stretches them itself)."""
    work = [(piece, stretch) for stretch in stretches for piece in pieces if piece.notes]
    return [piece_tokens(augment(piece, 0, stretch))
            for piece, stretch in tqdm(work, desc="encoding pieces", unit="piece", disable=not progress)]


def piece_tokens(piece: NoteSequence) -> np.ndarray:
    """A whole (sustain-extended) piece as tokens, ending with END."""
    return np.append(encode(piece, sustain=False), END).astype(np.int32)


def _encode_one(piece: NoteSequence) -> np.ndarray:
    return piece_tokens(piece)


def encode_corpus(source: Path | str, split: str | None = "train", split_csv: Path | str | None = None,
                  workers: int = 1) -> TokenFile:
    """A split's pieces with notes as tokens, at their own tempo, with their composers: a token
    file for `w2m2w train compose` where note-seq is not installed (an accelerator machine)."""
    pieces, composers = load_labelled_pieces(source, split, split_csv)
    kept = [i for i, p in enumerate(pieces) if p.notes]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            tokens = list(pool.map(_encode_one, [pieces[i] for i in kept], chunksize=8))
    else:
        tokens = [piece_tokens(pieces[i]) for i in tqdm(kept, desc="encoding pieces", unit="piece")]
    return TokenFile(tokens, np.ones(len(tokens), np.float32), [composers[i] for i in kept])


def encode_from(settings) -> int:
    """`w2m2w compose-tools encode`."""
    corpus = encode_corpus(settings.source, settings.split, settings.split_csv, settings.workers)
    corpus.save(settings.out)
    print(f"{len(corpus.pieces)} pieces, {sum(map(len, corpus.pieces)):,} tokens -> {settings.out} "
          f"({settings.out.stat().st_size / 2**20:.1f} MiB)")
    return 0
