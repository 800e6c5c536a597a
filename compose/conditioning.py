"""What music people steer a composer with: a composer token and a note-density token before the
music (compose/vocabulary.py). Plain numbers, no note-seq: training crops on an accelerator
machine carry them too.

    prefix(composer="Chopin", notes_per_second=12.0) -> [COMPOSER + 4, DENSITY + 3]
"""

from __future__ import annotations

import numpy as np

from compose.vocabulary import (
    COMPOSER,
    COMPOSERS,
    CONDITIONED_VOCAB_SIZE,
    DENSITY,
    DENSITY_EDGES,
    NOTE_ON,
    TIME_SHIFT,
    VELOCITY,
    VOCAB_SIZE,
)

STEPS_PER_SECOND = 100  # time shifts are 10 ms steps (compose/tokens.py checks it against note-seq)


def composer_index(name: str | None) -> int | None:
    """ASAP's composer label ("Chopin", or a full name such as "Frédéric Chopin", any case) -> its
    index in COMPOSERS; None for no name or an unknown one (a piece without a label)."""
    if not name:
        return None
    wanted = name.strip().split()[-1].casefold() if name.strip() else ""
    return next((i for i, known in enumerate(COMPOSERS) if known.casefold() == wanted), None)


def composer_token(name: str) -> int:
    index = composer_index(name)
    if index is None:
        raise ValueError(f"unknown composer {name!r}; choose from {', '.join(COMPOSERS)}")
    return COMPOSER + index


def density_bucket(notes_per_second: float) -> int:
    """0 (sparsest) .. len(DENSITY_EDGES) (densest)."""
    return int(np.searchsorted(DENSITY_EDGES, notes_per_second, side="right"))


def notes_per_second(tokens: np.ndarray) -> float:
    """Note-ons per second of music given as tokens (its time shifts give its length; at least 1 s)."""
    tokens = np.asarray(tokens)
    note_ons = int(((tokens >= NOTE_ON) & (tokens < NOTE_ON + 128)).sum())
    shifts = tokens[(tokens >= TIME_SHIFT) & (tokens < VELOCITY)]
    seconds = float((shifts - TIME_SHIFT + 1).sum()) / STEPS_PER_SECOND
    return note_ons / max(seconds, 1.0)


def prefix(composer: str | int | None = None, notes_per_second: float | None = None) -> np.ndarray:
    """The conditioning tokens a piece starts with: a composer (name or index in COMPOSERS) and a
    density bucket, either left out when None."""
    tokens = []
    if composer is not None:
        tokens.append(COMPOSER + composer if isinstance(composer, (int, np.integer)) else composer_token(composer))
    if notes_per_second is not None:
        tokens.append(DENSITY + density_bucket(notes_per_second))
    return np.asarray(tokens, np.int32)


def is_conditioning(tokens: np.ndarray) -> np.ndarray:
    tokens = np.asarray(tokens)
    return (tokens >= VOCAB_SIZE) & (tokens < CONDITIONED_VOCAB_SIZE)


def describe_prefix(tokens: np.ndarray) -> dict:
    """{"composer": name, "density_bucket": b} of the conditioning tokens among `tokens`."""
    described = {}
    for token in np.asarray(tokens)[is_conditioning(tokens)]:
        if token < DENSITY:
            described["composer"] = COMPOSERS[token - COMPOSER]
        else:
            described["density_bucket"] = int(token - DENSITY)
    return described
