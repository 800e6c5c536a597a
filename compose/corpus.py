"""Training crops cut from whole encoded pieces, and token files that carry a corpus to machines
without note-seq (an accelerator machine, where `w2m2w train compose` reads a token file).

Each piece is encoded once, whole (ending with END); a crop is `length` + 1 tokens at a random
place in a random piece, transposed by up to +-3 semitones and stretched in time by one of five
factors (0.95 .. 1.05, the paper's augmentation) at the token level. A crop may thus begin
mid-performance, with note-offs of notes it never saw struck, exactly as the evaluation's chunks
(compose/evaluate.py) and long sampled continuations do. Crops encoded afresh from a window of
notes always began cleanly: the composer trained on them paid 4.24 nats/event for the first 32
tokens of a validation chunk cut mid-piece (2.71 at a piece's start), 2.95 after a short run on
these crops (README, the shipped composer).

With `conditioning`, a crop starts with its piece's composer token and its own note-density
token (compose/conditioning.py), each left out with probability `label_dropout`; the targets
that are conditioning tokens are PAD (never predicted, never scored).
"""

from __future__ import annotations

import dataclasses
import io
import lzma
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from compose import conditioning
from compose.vocabulary import NOTE_OFF, NOTE_ON, PAD, PIANO_RANGE, TIME_SHIFT, VELOCITY

TRANSPOSE_SEMITONES = 3
STRETCHES = (0.95, 0.975, 1.0, 1.025, 1.05)
MAX_SHIFT_STEPS = VELOCITY - TIME_SHIFT  # 100 steps of 10 ms


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


def stretch(tokens: np.ndarray, factor: float) -> np.ndarray:
    """Every event's time multiplied by `factor` (rounded to the 10 ms grid), its time shifts
    rewritten as encoding writes them: full 1 s shifts first, then the rest. The events keep
    their order, so the music keeps the grammar (compose/grammar.py)."""
    tokens = np.asarray(tokens)
    if factor == 1.0:
        return tokens
    is_shift = (tokens >= TIME_SHIFT) & (tokens < VELOCITY)
    steps = np.where(is_shift, tokens - TIME_SHIFT + 1, 0)
    elapsed = np.cumsum(steps)
    events = np.flatnonzero(~is_shift)
    # Each event's new time, and the end of the tokens (the shifts after the last event).
    times = np.round(np.append(elapsed[events], elapsed[-1] if len(tokens) else 0) * factor).astype(np.int64)
    gaps = np.diff(np.concatenate([[0], times]))
    out = []
    for gap, event in zip(gaps, np.append(tokens[events], -1)):
        out += [TIME_SHIFT + MAX_SHIFT_STEPS - 1] * int(gap // MAX_SHIFT_STEPS)
        if gap % MAX_SHIFT_STEPS:
            out.append(TIME_SHIFT + int(gap % MAX_SHIFT_STEPS) - 1)
        if event >= 0:
            out.append(int(event))
    return np.asarray(out, tokens.dtype if len(tokens) else np.int32)


class TokenCrops(keras.utils.PyDataset):
    """Batches of (inputs, targets), (batch_size, length) each, targets shifted by one token:
    crops of whole pieces' tokens, pieces drawn in proportion to their length, padded with PAD
    where a crop runs past a piece's END. `composers`: each piece's index in COMPOSERS (None:
    unknown), for `conditioning`."""

    def __init__(self, pieces: list[np.ndarray], batch_size: int, length: int, steps: int, seed: int = 0,
                 augmentation: bool = True, stretches: Sequence[float] = STRETCHES, conditioning: bool = False,
                 composers: Sequence[int | None] | None = None, label_dropout: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        kept = [i for i, p in enumerate(pieces) if len(p) > 1]
        self.pieces = [np.asarray(pieces[i], np.int32) for i in kept]
        if not self.pieces:
            raise ValueError("no piece with notes to train on")
        self.composers = [composers[i] for i in kept] if composers is not None else [None] * len(kept)
        self.batch_size, self.length, self.steps, self.augmentation = batch_size, length, steps, augmentation
        self.stretches, self.conditioning, self.label_dropout = tuple(stretches), conditioning, label_dropout
        sizes = np.array([len(p) for p in self.pieces], np.float64)
        self.weights = sizes / sizes.sum()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def crop(self) -> tuple[np.ndarray, int]:
        """length + 1 tokens, and how many of them lead as conditioning tokens."""
        index = self.rng.choice(len(self.pieces), p=self.weights)
        piece = self.pieces[index]
        start = int(self.rng.integers(0, max(1, len(piece) - self.length)))
        # Room for the notes a transposition drops and the shifts a stretch merges.
        part = piece[start: start + self.length + 1 + 64 + self.length // 8]
        if self.augmentation:
            part = transpose(part, int(self.rng.integers(-TRANSPOSE_SEMITONES, TRANSPOSE_SEMITONES + 1)))
            part = stretch(part, float(self.rng.choice(self.stretches)))
        lead = np.zeros(0, np.int32)
        if self.conditioning:
            keep_composer, keep_density = self.rng.uniform(size=2) >= self.label_dropout
            composer = self.composers[index] if keep_composer else None
            music = part[: self.length + 1 - (composer is not None) - keep_density]  # what the crop holds
            lead = conditioning.prefix(composer, conditioning.notes_per_second(music) if keep_density else None)
        out = np.full(self.length + 1, PAD, np.int32)
        part = np.concatenate([lead, part])[: self.length + 1]
        out[: len(part)] = part
        return out, len(lead)

    def __getitem__(self, index):
        crops, leads = zip(*(self.crop() for _ in range(self.batch_size)))
        batch = np.stack(crops)
        targets = batch[:, 1:].copy()
        for row, lead in enumerate(leads):
            targets[row, : max(lead - 1, 0)] = PAD  # a conditioning token is never a next event
        return batch[:, :-1], targets


def even_spread(pieces: list, count: int | None) -> list:
    """At most `count` pieces spread evenly over a (sorted) list: a fixed subset, so that scores
    on it stay comparable between epochs and checkpoints."""
    if not count or len(pieces) <= count:
        return list(pieces)
    return pieces[:: -(-len(pieces) // count)]


@dataclasses.dataclass
class TokenFile:
    """Pieces as tokens, each with its time stretch and composer ("" unknown), as an `.npz`
    (`tokens` uint16 one piece after another, `starts`, `stretch`, `composer`), or `.npz.xz`
    compressed with LZMA (a third of the size)."""

    pieces: list[np.ndarray]
    stretch: np.ndarray
    composers: list[str]

    def to_bytes(self) -> bytes:
        lengths = [len(p) for p in self.pieces]
        buffer = io.BytesIO()
        np.savez(buffer, tokens=np.concatenate(self.pieces).astype(np.uint16),
                 starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                 stretch=np.asarray(self.stretch, np.float32), composer=np.asarray(self.composers, str))
        return buffer.getvalue()

    def save(self, path: Path | str) -> None:
        from stages.contract import write_bytes_atomic

        data = self.to_bytes()
        write_bytes_atomic(Path(path), lzma.compress(data, preset=6) if str(path).endswith(".xz") else data)

    @classmethod
    def load(cls, path: Path | str) -> "TokenFile":
        path = Path(path)
        source = io.BytesIO(lzma.decompress(path.read_bytes())) if path.suffix == ".xz" else path
        with np.load(source) as data:
            tokens, starts = data["tokens"].astype(np.int32), data["starts"]
            stretch = data["stretch"] if "stretch" in data else np.ones(len(starts), np.float32)
            composers = [str(c) for c in data["composer"]] if "composer" in data else [""] * len(starts)
        return cls(np.split(tokens, starts[1:]), stretch, composers)

    def unstretched(self) -> "TokenFile":
        """The pieces at their own tempo only (the crops stretch them themselves)."""
        keep = [i for i, s in enumerate(self.stretch) if abs(float(s) - 1.0) < 1e-6]
        return TokenFile([self.pieces[i] for i in keep], self.stretch[keep], [self.composers[i] for i in keep])


def token_file_bytes(pieces: list[np.ndarray], stretch: list[float], composers: list[str] | None = None) -> bytes:
    return TokenFile(list(pieces), np.asarray(stretch, np.float32), list(composers or [""] * len(pieces))).to_bytes()


def load_token_file(path: Path | str) -> list[np.ndarray]:
    """The pieces of a token file (`.npz`, or `.npz.xz`), int32 each."""
    return TokenFile.load(path).pieces
