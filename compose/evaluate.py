"""Mean negative log-likelihood per event (nats) on held-out pieces, as the Music Transformer
paper reports it: each piece (ending with END) is cut into non-overlapping chunks of the model's
training length, every chunk is scored on its own, and every token after a chunk's first is
one predicted event.

Every figure comes twice: of the model as it is, and renormalized over the events the grammar of
encoded music allows (`compose/grammar.py`), the distribution the sampler draws from. A chunk cut
from the middle of a piece knows no key's state before its first token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import keras
import numpy as np

from compose.vocabulary import PAD

if TYPE_CHECKING:  # stages.midi needs note-seq, which token_nll_per_event does without
    from stages.midi import NoteSequence


def chunks(tokens: np.ndarray, length: int) -> list[np.ndarray]:
    """Chunks of length + 1 tokens overlapping by one (the next chunk's first input is this
    chunk's last target), so each token after the first is predicted exactly once."""
    return [tokens[start: start + length + 1] for start in range(0, max(len(tokens) - 1, 1), length)]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


BATCH_TOKENS = 4096  # tokens scored per model call: 8 chunks of 512, 2 of 2048


def nll_per_event(model: keras.Model, pieces: Sequence[NoteSequence], length: int | None = None,
                  batch_size: int | None = None) -> dict:
    from compose.data import piece_tokens  # here, not above: it needs note-seq, token_nll_per_event not

    pieces = [p for p in pieces if p.notes]
    return {**token_nll_per_event(model, [piece_tokens(p) for p in pieces], length, batch_size), "pieces": len(pieces)}


def scored_chunks(model: keras.Model, pieces: Sequence[np.ndarray], length: int, batch_size: int | None = None):
    """Each chunk of each piece (tokens ending with END) as (chunk, whether it starts its piece,
    log-probabilities of its len(chunk) - 1 targets, (T, vocab)), scored in batches."""
    batch_size = batch_size or max(1, BATCH_TOKENS // length)
    batch_inputs = [(c, index == 0) for tokens in pieces for index, c in enumerate(chunks(tokens, length)) if len(c) > 1]
    for first in range(0, len(batch_inputs), batch_size):
        group = batch_inputs[first: first + batch_size]
        padded = np.full((batch_size, length + 1), PAD, np.int32)  # a fixed shape: traced once
        for i, (chunk, _) in enumerate(group):
            padded[i, : len(chunk)] = chunk
        log_probs = log_softmax(np.asarray(model.predict_on_batch(padded[:, :-1]), np.float64))
        for (chunk, start_of_piece), chunk_log_probs in zip(group, log_probs):
            yield chunk, start_of_piece, chunk_log_probs[: len(chunk) - 1]


def token_nll_per_event(model: keras.Model, pieces: Sequence[np.ndarray], length: int | None = None,
                        batch_size: int | None = None, in_grammar: bool = True) -> dict:
    """nll_per_event of pieces given as tokens (each ending with END). Without `in_grammar` no
    figure in the grammar: that needs note-seq, which an accelerator machine may lack."""
    if in_grammar:
        from compose.grammar import invalid_after
    total, in_grammar_total, events = 0.0, 0.0, 0
    for chunk, start_of_piece, chunk_log_probs in scored_chunks(model, pieces, length or model.config.sequence_length,
                                                                batch_size):
        inputs, targets = chunk[:-1], chunk[1:]
        picked = chunk_log_probs[np.arange(len(targets)), targets]
        total -= float(picked.sum())
        events += len(targets)
        if in_grammar:
            invalid = invalid_after(inputs, start_of_piece)
            if invalid[np.arange(len(targets)), targets].any():
                raise ValueError("a scored piece breaks the grammar of encoded music")
            allowed = np.log(np.where(invalid, 0.0, np.exp(chunk_log_probs)).sum(axis=-1))
            in_grammar_total -= float((picked - allowed).sum())
    result = {"nll_per_event": total / max(events, 1)}
    if in_grammar:
        result["nll_per_event_in_grammar"] = in_grammar_total / max(events, 1)
    return {**result, "events": events}
