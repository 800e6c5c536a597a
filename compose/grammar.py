"""The grammar of performance events: what encoded music never holds, so a composer need not
write it either.

Encoded music sounds one note per key at a time and releases each, so a note-on of a key that is
sounding and a note-off of a key that is silent never occur; a time shift shorter than the
longest is never followed by another (longer pauses are cut into full shifts first); a velocity
is always followed by a note-on, and never repeats the velocity in force (it marks a change), so
the first note-on of a piece comes after a velocity. A model puts some probability on these
events anyway (about 5% of the shipped one's mass on the test pieces). Renormalizing it over the
events the grammar allows is still a distribution over every piece of music, one that scores
real music higher and never samples what real music never holds.

A key's state is unknown until the tokens mention it (a chunk cut from the middle of a piece),
or silent when the tokens start a piece; so is the velocity in force until a velocity token.
Conditioning tokens (a composer, a note density) change no state and never come next.
"""

from __future__ import annotations

import numpy as np
from keras import ops
from note_seq.performance_lib import PerformanceEvent

from compose.tokens import ENCODING, MAX_SHIFT_STEPS, PAD, SPECIAL_TOKENS, VOCAB_SIZE
from compose.vocabulary import CONDITIONED_VOCAB_SIZE

UNKNOWN, SOUNDING, SILENT = 0, 1, 2
KEYS = 128
NO_VELOCITY = -1  # at a piece's start, before its first velocity token (PAD: unknown, in a chunk)


def _events() -> tuple[np.ndarray, np.ndarray]:
    kinds, values = np.full(CONDITIONED_VOCAB_SIZE, -1, np.int32), np.zeros(CONDITIONED_VOCAB_SIZE, np.int32)
    for token in range(SPECIAL_TOKENS, VOCAB_SIZE):
        event = ENCODING.decode_event(token - SPECIAL_TOKENS)
        kinds[token], values[token] = event.event_type, event.event_value
    return kinds, values


KIND, VALUE = _events()
IS_NOTE_ON = KIND == PerformanceEvent.NOTE_ON
IS_NOTE_OFF = KIND == PerformanceEvent.NOTE_OFF
IS_SHIFT = KIND == PerformanceEvent.TIME_SHIFT
IS_VELOCITY = KIND == PerformanceEvent.VELOCITY
# A token after which no time shift may come, and one after which only a note-on may.
ENDS_A_PAUSE = IS_SHIFT & (VALUE < MAX_SHIFT_STEPS)
KEY = np.where(IS_NOTE_ON | IS_NOTE_OFF, VALUE, 0)  # the key a note token names (0 for others)
IS_CONDITIONING = np.arange(CONDITIONED_VOCAB_SIZE) >= VOCAB_SIZE


def key_states(tokens: np.ndarray, start_of_piece: bool = False) -> np.ndarray:
    """(L,) tokens -> (L, 128) the state of every key after each token."""
    tokens = np.asarray(tokens, np.int64)
    length = len(tokens)
    marks = np.zeros((length, KEYS), np.int8)
    rows = np.flatnonzero(IS_NOTE_ON[tokens] | IS_NOTE_OFF[tokens])
    marks[rows, KEY[tokens[rows]]] = np.where(IS_NOTE_ON[tokens[rows]], SOUNDING, SILENT)
    # Carry each key's latest mark forward.
    latest = np.maximum.accumulate(np.where(marks > 0, np.arange(length)[:, None], -1), axis=0)
    states = np.take_along_axis(marks, np.maximum(latest, 0), axis=0)
    return np.where(latest >= 0, states, SILENT if start_of_piece else UNKNOWN).astype(np.int8)


def velocities(tokens: np.ndarray, start_of_piece: bool = False) -> np.ndarray:
    """(L,) tokens -> (L,) the velocity token in force after each token."""
    tokens = np.asarray(tokens, np.int64)
    latest = np.maximum.accumulate(np.where(IS_VELOCITY[tokens], np.arange(len(tokens)), -1))
    return np.where(latest >= 0, tokens[np.maximum(latest, 0)], NO_VELOCITY if start_of_piece else PAD)


def invalid_after(tokens: np.ndarray, start_of_piece: bool = False, vocab_size: int = VOCAB_SIZE) -> np.ndarray:
    """(L,) tokens -> (L, vocab_size) bool: row i marks the tokens that cannot follow tokens[: i + 1]."""
    tokens = np.asarray(tokens, np.int64)
    states = key_states(tokens, start_of_piece)[:, KEY]  # (L, vocab): the state of the key each token names
    invalid = (IS_NOTE_ON & (states == SOUNDING)) | (IS_NOTE_OFF & (states == SILENT))
    invalid |= ENDS_A_PAUSE[tokens][:, None] & IS_SHIFT
    invalid |= IS_VELOCITY[tokens][:, None] & ~IS_NOTE_ON
    velocity = velocities(tokens, start_of_piece)[:, None]
    invalid |= IS_VELOCITY & (np.arange(CONDITIONED_VOCAB_SIZE) == velocity)
    invalid |= IS_NOTE_ON & (velocity == NO_VELOCITY)
    invalid = invalid & ~invalid[:, :VOCAB_SIZE].all(axis=-1, keepdims=True)  # never rule out every event
    return (invalid | IS_CONDITIONING)[:, :vocab_size]


# The same rules one token at a time, in backend ops for compiled sampling loops. The state is one
# int32 vector: the 128 key states, the latest token, the velocity token in force.


def initial_state(tokens: np.ndarray, start_of_piece: bool = True) -> np.ndarray:
    """The state after `tokens` (at least one)."""
    last = [tokens[-1], velocities(tokens, start_of_piece)[-1]]
    return np.append(key_states(tokens, start_of_piece)[-1], last).astype(np.int32)


def mask(logits, state):
    """(B, vocab) logits with the tokens that cannot follow `state` pushed to -1e9 (vocab: a
    model's, with or without the conditioning tokens)."""
    vocab = logits.shape[-1]
    note_on, note_off = IS_NOTE_ON[:vocab], IS_NOTE_OFF[:vocab]
    shift, velocity_token = IS_SHIFT[:vocab], IS_VELOCITY[:vocab]
    states = ops.take(state[:KEYS], KEY[:vocab])
    last, velocity = state[KEYS], state[KEYS + 1]
    invalid = ops.logical_or(ops.logical_and(note_on, states == SOUNDING), ops.logical_and(note_off, states == SILENT))
    invalid = ops.logical_or(invalid, ops.logical_and(ops.take(ENDS_A_PAUSE, last), shift))
    invalid = ops.logical_or(invalid, ops.logical_and(ops.take(IS_VELOCITY, last), ~note_on))
    invalid = ops.logical_or(invalid, ops.logical_and(velocity_token, ops.arange(vocab) == velocity))
    invalid = ops.logical_or(invalid, ops.logical_and(note_on, velocity == NO_VELOCITY))
    invalid = ops.logical_and(invalid, ops.logical_not(ops.all(invalid[:VOCAB_SIZE])))
    invalid = ops.logical_or(invalid, IS_CONDITIONING[:vocab])
    return ops.where(invalid[None], -1e9, logits)


def advance(state, token):
    """The state after one more token (a scalar)."""
    key = ops.take(KEY, token)
    mark = ops.where(ops.take(IS_NOTE_ON, token), SOUNDING, SILENT)
    names_key = ops.logical_or(ops.take(IS_NOTE_ON, token), ops.take(IS_NOTE_OFF, token))
    keys = ops.where(ops.logical_and(names_key, ops.arange(KEYS) == key), mark, state[:KEYS])
    token = ops.reshape(ops.cast(token, "int32"), (1,))
    velocity = ops.where(ops.take(IS_VELOCITY, token), token, state[KEYS + 1:])
    return ops.concatenate([ops.cast(keys, "int32"), token, ops.cast(velocity, "int32")])
