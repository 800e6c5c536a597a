"""Mean negative log-likelihood per event (nats) on held-out pieces, as the Music Transformer
paper reports it: each piece (ending with END) is cut into non-overlapping chunks of the model's
training length, every chunk is scored on its own, and every token after a chunk's first is
one predicted event.

Every figure comes twice: of the model as it is, and renormalized over the events the grammar of
encoded music allows (`compose/grammar.py`), the distribution the sampler draws from. A chunk cut
from the middle of a piece knows no key's state before its first token."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Sequence

import keras
import numpy as np
from keras import ops

from compose.vocabulary import PAD

if TYPE_CHECKING:  # stages.io.midi needs note-seq, which token_nll_per_event does without
    from stages.io.midi import NoteSequence


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


def _batches(pieces: Sequence[np.ndarray], length: int, batch_size: int,
             prefixes: Sequence[np.ndarray] | None = None):
    """(padded (batch_size, length + 1) tokens, [(piece index, chunk, whether it starts its
    piece, how many conditioning tokens lead it)]) for each batch of chunks; a fixed shape, traced
    once. With `prefixes`, each chunk of a piece is shorter by its prefix and led by it."""
    leads = [np.asarray(prefixes[i] if prefixes is not None else [], np.int32) for i in range(len(pieces))]
    chunked = [(index, c, number == 0, len(leads[index])) for index, tokens in enumerate(pieces)
               for number, c in enumerate(chunks(tokens, length - len(leads[index]))) if len(c) > 1]
    for first in range(0, len(chunked), batch_size):
        group = chunked[first: first + batch_size]
        padded = np.full((batch_size, length + 1), PAD, np.int32)
        for i, (index, chunk, _, lead) in enumerate(group):
            padded[i, : lead + len(chunk)] = np.concatenate([leads[index], chunk])
        yield padded, group


def scored_chunks(model: keras.Model, pieces: Sequence[np.ndarray], length: int, batch_size: int | None = None):
    """Each chunk of each piece (tokens ending with END) as (chunk, whether it starts its piece,
    log-probabilities of its len(chunk) - 1 targets, (T, vocab)), scored in batches."""
    batch_size = batch_size or max(1, BATCH_TOKENS // length)
    for padded, group in _batches(pieces, length, batch_size):
        log_probs = log_softmax(np.asarray(model.predict_on_batch(padded[:, :-1]), np.float64))
        for (_, chunk, start_of_piece, _), chunk_log_probs in zip(group, log_probs):
            yield chunk, start_of_piece, chunk_log_probs[: len(chunk) - 1]


_SCORERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def target_log_probs(model: keras.Model):
    """A compiled function: inputs, targets (B, L) -> log-probability of each target (B, L),
    computed where the model runs, so only (B, L) numbers come back (the fast path of scoring
    on an accelerator)."""
    if model not in _SCORERS:
        from stages.compiled import compiled

        def score(inputs, targets):
            log_probs = ops.log_softmax(ops.cast(model(inputs, training=False), "float32"), axis=-1)
            return ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1)[..., 0]

        _SCORERS[model] = compiled(score)
    return _SCORERS[model]


def token_nll_per_event(model: keras.Model, pieces: Sequence[np.ndarray], length: int | None = None,
                        batch_size: int | None = None, in_grammar: bool = True, per_piece: bool = False,
                        prefixes: Sequence[np.ndarray] | None = None) -> dict:
    """nll_per_event of pieces given as tokens (each ending with END). Without `in_grammar` no
    figure in the grammar (that needs note-seq, which an accelerator machine may lack), and the
    log-probabilities are gathered where the model runs. `per_piece`: also each piece's summed
    NLL and events (`piece_nll`, `piece_events`), for intervals over pieces. `prefixes`: each
    piece's conditioning tokens (compose.conditioning.prefix), leading each of its chunks (not
    with `in_grammar`); the events scored are those scored without them."""
    length = length or model.config.sequence_length
    if prefixes is not None and in_grammar:
        raise ValueError("conditioned scoring gives the raw figure only: in_grammar=False")
    piece_nll, piece_grammar_nll, piece_events = (np.zeros(len(pieces)) for _ in range(3))
    if in_grammar:
        from compose.grammar import invalid_after

        for index, (chunk, start_of_piece, chunk_log_probs) in zip(_piece_indices(pieces, length),
                                                                   scored_chunks(model, pieces, length, batch_size)):
            inputs, targets = chunk[:-1], chunk[1:]
            picked = chunk_log_probs[np.arange(len(targets)), targets]
            invalid = invalid_after(inputs, start_of_piece, chunk_log_probs.shape[-1])
            if invalid[np.arange(len(targets)), targets].any():
                raise ValueError("a scored piece breaks the grammar of encoded music")
            allowed = np.log(np.where(invalid, 0.0, np.exp(chunk_log_probs)).sum(axis=-1))
            piece_nll[index] -= float(picked.sum())
            piece_grammar_nll[index] -= float((picked - allowed).sum())
            piece_events[index] += len(targets)
    else:
        score = target_log_probs(model)
        for padded, group in _batches(pieces, length, batch_size or max(1, BATCH_TOKENS // length), prefixes):
            picked = np.asarray(score(padded[:, :-1], padded[:, 1:]), np.float64)
            for (index, chunk, _, lead), row in zip(group, picked):
                piece_nll[index] -= float(row[lead: lead + len(chunk) - 1].sum())
                piece_events[index] += len(chunk) - 1
    events = int(piece_events.sum())
    result = {"nll_per_event": float(piece_nll.sum()) / max(events, 1)}
    if in_grammar:
        result["nll_per_event_in_grammar"] = float(piece_grammar_nll.sum()) / max(events, 1)
    result["events"] = events
    if per_piece:
        result.update(piece_nll=piece_nll, piece_events=piece_events)
        if in_grammar:
            result["piece_nll_in_grammar"] = piece_grammar_nll
    return result


def _piece_indices(pieces: Sequence[np.ndarray], length: int):
    """The piece of each chunk that scored_chunks yields, in its order."""
    for index, tokens in enumerate(pieces):
        for c in chunks(tokens, length):
            if len(c) > 1:
                yield index


def bootstrap_interval(piece_nll: np.ndarray, piece_events: np.ndarray, groups: Sequence | None = None,
                       resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the NLL per event (total NLL / total events) over pieces drawn with
    replacement; with `groups` (e.g. each performance's work), whole groups are drawn, as the
    performances of one work are not independent."""
    piece_nll, piece_events = np.asarray(piece_nll, np.float64), np.asarray(piece_events, np.float64)
    if groups is not None:
        labels, inverse = np.unique(np.asarray(groups), return_inverse=True)
        piece_nll = np.bincount(inverse, piece_nll, len(labels))
        piece_events = np.bincount(inverse, piece_events, len(labels))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(piece_nll), (resamples, len(piece_nll)))
    ratios = piece_nll[draws].sum(axis=1) / piece_events[draws].sum(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def evaluate_from(settings) -> int:
    """`w2m2w evaluate compose`: prints the figures as JSON."""
    import json

    from compose.corpus import TokenFile, even_spread
    from compose.model import MusicTransformer  # noqa: F401  (registers the composers' classes for loading)
    from compose.settings import is_token_file
    from stages.checkpoints import checkpoint_for

    model = keras.saving.load_model(checkpoint_for("compose", settings.checkpoint), compile=False)
    if is_token_file(settings.midi_dir):  # no note-seq needed (--raw-only)
        pieces = even_spread(TokenFile.load(settings.midi_dir).unstretched().pieces, settings.max_pieces)
    else:
        from compose.data import load_pieces, piece_tokens

        split = settings.split if settings.split_csv else None
        chosen = even_spread(load_pieces(settings.midi_dir, split, settings.split_csv), settings.max_pieces)
        pieces = [piece_tokens(p) for p in chosen if p.notes]
    result = token_nll_per_event(model, pieces, settings.chunk_length, settings.batch_size,
                                 in_grammar=not settings.raw_only, per_piece=True)
    interval = bootstrap_interval(result.pop("piece_nll"), result.pop("piece_events"))
    result.pop("piece_nll_in_grammar", None)
    result = {**result, "nll_per_event_interval_95": list(interval), "pieces": len(pieces)}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else
                      [round(x, 4) for x in v] if isinstance(v, list) else v for k, v in result.items()}))
    return 0
