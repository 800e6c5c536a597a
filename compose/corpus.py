"""Training crops cut from whole encoded pieces, and token files that carry a corpus to machines
without note-seq (an accelerator machine: scripts/train_composer_tokens.py).

Each piece is encoded once, whole (ending with END); a crop is `length` + 1 tokens at a random
place in a random piece, transposed by up to +-3 semitones at the token level. A crop may thus
begin mid-performance, with note-offs of notes it never saw struck, exactly as the evaluation's
chunks (compose/evaluate.py) and long sampled continuations do. Crops encoded afresh from a
window of notes always began cleanly: the composer trained on them paid 4.24 nats/event for the
first 32 tokens of a validation chunk cut mid-piece (2.71 at a piece's start), 2.95 after a
short run on these crops (README, the shipped composer).
"""

from __future__ import annotations

import io
import lzma
from pathlib import Path

import keras
import numpy as np

from compose.vocabulary import NOTE_OFF, NOTE_ON, PAD, PIANO_RANGE

TRANSPOSE_SEMITONES = 3


def transpose(tokens: np.ndarray, semitones: int) -> np.ndarray:
    """Note tokens moved by `semitones`; notes that leave the piano's range are dropped (their
    note-ons and note-offs both, as compose.tokens.augment drops the notes)."""
    if not semitones:
        return tokens
    out = np.asarray(tokens).copy()
    keep = np.ones(len(out), bool)
    for first in (NOTE_ON, NOTE_OFF):
        is_note = (out >= first) & (out < first + 128)
        pitch = out - first + semitones
        keep &= ~(is_note & ((pitch < PIANO_RANGE[0]) | (pitch > PIANO_RANGE[1])))
        out = np.where(is_note, out + semitones, out)
    return out[keep]


class TokenCrops(keras.utils.PyDataset):
    """Batches of (inputs, targets), (batch_size, length) each, targets shifted by one token:
    crops of whole pieces' tokens, pieces drawn in proportion to their length, padded with PAD
    where a crop runs past a piece's END."""

    def __init__(self, pieces: list[np.ndarray], batch_size: int, length: int, steps: int, seed: int = 0,
                 augmentation: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.pieces = [np.asarray(p, np.int32) for p in pieces if len(p) > 1]
        if not self.pieces:
            raise ValueError("no piece with notes to train on")
        self.batch_size, self.length, self.steps, self.augmentation = batch_size, length, steps, augmentation
        sizes = np.array([len(p) for p in self.pieces], np.float64)
        self.weights = sizes / sizes.sum()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def crop(self) -> np.ndarray:
        piece = self.pieces[self.rng.choice(len(self.pieces), p=self.weights)]
        start = int(self.rng.integers(0, max(1, len(piece) - self.length)))
        part = piece[start: start + self.length + 1 + 64]  # room for the notes a transposition drops
        if self.augmentation:
            part = transpose(part, int(self.rng.integers(-TRANSPOSE_SEMITONES, TRANSPOSE_SEMITONES + 1)))
        out = np.full(self.length + 1, PAD, np.int32)
        part = part[: self.length + 1]
        out[: len(part)] = part
        return out

    def __getitem__(self, index):
        batch = np.stack([self.crop() for _ in range(self.batch_size)])
        return batch[:, :-1], batch[:, 1:]


def even_spread(pieces: list, count: int | None) -> list:
    """At most `count` pieces spread evenly over a (sorted) list: a fixed subset, so that scores
    on it stay comparable between epochs and checkpoints."""
    if not count or len(pieces) <= count:
        return list(pieces)
    return pieces[:: -(-len(pieces) // count)]


def token_file_bytes(pieces: list[np.ndarray], stretch: list[float]) -> bytes:
    """A token file: `tokens` (uint16, the pieces one after another), `starts` (where each piece
    begins) and `stretch` (each piece's time stretch), as an `.npz`."""
    lengths = [len(p) for p in pieces]
    buffer = io.BytesIO()
    np.savez(buffer, tokens=np.concatenate(pieces).astype(np.uint16),
             starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
             stretch=np.asarray(stretch, np.float32))
    return buffer.getvalue()


def load_token_file(path: Path | str) -> list[np.ndarray]:
    """The pieces of a token file (`.npz`, or `.npz.xz` compressed with LZMA), int32 each."""
    path = Path(path)
    source = io.BytesIO(lzma.decompress(path.read_bytes())) if path.suffix == ".xz" else path
    with np.load(source) as data:
        tokens, starts = data["tokens"].astype(np.int32), data["starts"]
    return np.split(tokens, starts[1:])
