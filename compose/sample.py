"""Sampling from the Music Transformer: incremental decoding with a key/value cache.

Each new token attends to the cached keys and values instead of re-running the whole prefix.
Tokens are drawn inside one compiled loop per chunk of up to `chunk` tokens (sampling included,
from uniforms drawn by a seeded NumPy generator), so Python is entered once a chunk, not once a
token, and the cache is updated in place. Pieces may be far longer than the training length:

- A Music Transformer with an attention span (the shipped one) keeps a ring buffer of its span's
  keys and values per layer and never re-encodes: every new token sees exactly what it would in
  one pass over the whole piece (layers x (span - 1) tokens back, the default `window`).
- Otherwise the cache holds `window` positions; when it is full, the last half of the window is
  re-encoded in one pass (relative attention depends only on distances, so the kept tokens see
  what they saw before, less the dropped ones) and generation goes on.

A conditioned model reads its conditioning tokens (compose/conditioning.py) first, as it was
trained, and never draws one. With `seconds`, the new music lasts exactly that long and ends with
every sounding note released.
"""

from __future__ import annotations

import numpy as np
from keras import ops
from note_seq.performance_lib import PerformanceEvent

from compose import grammar
from compose.model import MusicTransformer
from compose.tokens import ENCODING, END, MAX_SHIFT_STEPS, PAD, SPECIAL_TOKENS, STEPS_PER_SECOND, VOCAB_SIZE
from compose.vocabulary import NOTE_OFF, TIME_SHIFT
from stages.compiled import compiled

# With nothing to continue, generation starts after a short time shift: the quietest opening.
OPENING = SPECIAL_TOKENS + ENCODING.encode_event(PerformanceEvent(PerformanceEvent.TIME_SHIFT, MAX_SHIFT_STEPS // 4))


def pick(logits, uniforms, temperature, top_k, top_p):
    """Tokens (B,) from logits (B, vocab) with temperature, then top-k and nucleus (top-p), by
    inverting the kept distribution's CDF at `uniforms` (B,) in [0, 1). temperature <= 0 is
    greedy; top_k 0 keeps every token; top_p 1 keeps the whole mass. Backend ops only, so it
    runs inside compiled loops."""
    logits = ops.convert_to_tensor(logits, "float32")
    vocab = ops.shape(logits)[-1]
    # Padding and conditioning tokens are never a next event.
    logits = ops.where(ops.logical_or(ops.arange(vocab) == PAD, ops.arange(vocab) >= VOCAB_SIZE), -1e9, logits)
    greedy = ops.argmax(logits, axis=-1)
    values, order = ops.top_k(logits / ops.maximum(temperature, 1e-6), vocab)  # sorted, likeliest first
    probs = ops.softmax(values, axis=-1)
    rank = ops.arange(vocab)
    keep = ops.logical_and(ops.logical_or(top_k <= 0, rank < top_k),
                           ops.cumsum(probs, axis=-1) - probs < top_p)  # the smallest set reaching top_p
    keep = ops.logical_or(keep, rank == 0)
    probs = ops.where(keep, probs, 0.0)
    cdf = ops.cumsum(probs, axis=-1) / ops.sum(probs, axis=-1, keepdims=True)
    chosen = ops.minimum(ops.sum(ops.cast(cdf <= ops.expand_dims(uniforms, -1), "int32"), axis=-1), vocab - 1)
    sampled = ops.take_along_axis(order, ops.expand_dims(chosen, -1), axis=-1)[:, 0]
    return ops.cast(ops.where(temperature <= 0, greedy, sampled), "int32")


def choose(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0) -> int:
    """One token from (vocab,) logits, as the compiled loop picks it."""
    token = pick(np.asarray(logits, np.float32)[None], np.array([rng.uniform()], np.float32),
                 np.float32(temperature), np.int32(top_k), np.float32(top_p))
    return int(np.asarray(token)[0])


def _shift_seconds(token: int) -> float:
    if token < SPECIAL_TOKENS:
        return 0.0
    event = ENCODING.decode_event(token - SPECIAL_TOKENS)
    return event.event_value / STEPS_PER_SECOND if event.event_type == PerformanceEvent.TIME_SHIFT else 0.0


def ring(cache: np.ndarray, capacity: int) -> np.ndarray:
    """(B, H, L, D) keys or values of positions 0..L-1 -> `capacity` slots holding the latest
    of them, position p in slot p mod capacity, as `CausalSelfAttention.step` reads them."""
    length = cache.shape[2]
    if length < capacity:
        return np.pad(cache, [(0, 0), (0, 0), (0, capacity - length), (0, 0)])
    return np.roll(cache[:, :, length - capacity:], (length - capacity) % capacity, axis=2)


class Sampler:
    """`window`: the most tokens of context read in one pass (the primer's last ones, and each
    step of uncached sampling)."""

    def __init__(self, model: MusicTransformer, window: int | None = None, chunk: int = 32):
        if not isinstance(model, MusicTransformer):
            raise TypeError("incremental sampling needs a MusicTransformer")
        self.model, self.chunk = model, chunk
        c = model.config
        # Absolute positions grow without bound in a ring: that baseline re-encodes instead.
        self.span = c.attention_span if c.architecture == "relative" else 0
        self.window = window or (c.num_layers * (self.span - 1) + 1 if self.span else c.sequence_length)
        self.capacity = self.span or self.window
        self._chunk = compiled(self._chunk_loop, xla=True)
        self._prefill = compiled(lambda tokens: model.prefill(tokens))
        self._full = compiled(lambda tokens: model(tokens))

    def _encode(self, tokens: list[int]):
        """Logits after `tokens` and the cache of their latest `capacity` positions."""
        logits, cache = self._prefill(np.array([tokens], np.int32))
        return logits, [tuple(ring(np.asarray(part), self.capacity) for part in pair) for pair in cache]

    def _chunk_loop(self, logits, cache, position, rules, count, uniforms, temperature, top_k, top_p, in_grammar):
        """Draw `count` (<= len(uniforms)) tokens, each fed back through the cache: -> (tokens
        (chunk,), logits after the last, cache, position after the last, grammar state)."""

        def body(i, state):
            logits, cache, position, rules, out = state
            logits = ops.where(in_grammar, grammar.mask(logits, rules), logits)
            token = pick(logits, ops.take(uniforms, i)[None], temperature, top_k, top_p)
            out = ops.slice_update(out, ops.expand_dims(i, 0), token)
            rules = grammar.advance(rules, token[0])
            logits, cache = self.model.step(ops.expand_dims(token, 1), cache, position)
            return logits, cache, position + 1, rules, out

        out = ops.zeros(ops.shape(uniforms), "int32")
        logits, cache, position, rules, out = ops.fori_loop(0, count, body, (logits, cache, position, rules, out))
        return out, logits, cache, position, rules

    def generate(self, primer: np.ndarray | None = None, max_tokens: int = 512, seconds: float | None = None,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
                 use_cache: bool = True, stop_at_end: bool = True, in_grammar: bool = True,
                 conditioning: np.ndarray | None = None) -> np.ndarray:
        """New tokens after the primer (at most `max_tokens`; stops early at END, or once the
        new music lasts `seconds`, then ends exactly there with every sounding note released).
        `in_grammar`: only events that encoded music can hold (`compose/grammar.py`); the primer
        is taken to start a piece. `conditioning`: tokens read before the primer
        (compose.conditioning.prefix), for a model trained with them."""
        rng = np.random.default_rng(seed)
        lead = [int(t) for t in (conditioning if conditioning is not None else [])]
        if lead and self.model.config.vocab_size <= max(lead):
            raise ValueError("this composer was trained without conditioning tokens (composer, note density)")
        context = [int(t) for t in (primer if primer is not None and len(primer) else [])]
        if not context:
            # Nothing to condition on: start from a time shift, the quietest possible opening.
            context = [OPENING]
        primer_length = len(context)
        settings = (np.float32(temperature), np.int32(top_k), np.float32(top_p))
        rules = grammar.initial_state(np.array(lead + context))
        generated: list[int] = []
        elapsed = 0.0
        logits, cache, position = None, None, 0
        while len(generated) < max_tokens:
            if use_cache:
                if cache is None or (not self.span and position >= self.capacity):
                    room = (self.capacity // 2 if cache is not None else self.window) - len(lead)
                    kept = lead + context[-room:]
                    logits, cache = self._encode(kept)
                    position = len(kept)
                room = self.chunk if self.span else self.capacity - position
                count = min(self.chunk, room, max_tokens - len(generated))
                uniforms = rng.uniform(size=self.chunk).astype(np.float32)
                tokens, logits, cache, _, rules = self._chunk(logits, cache, np.int32(position), rules, np.int32(count),
                                                              uniforms, *settings, np.bool_(in_grammar))
                tokens = np.asarray(tokens)[:count].tolist()
                position += count
            else:
                window = lead + context[-(self.window - len(lead)):]
                padded = np.full((1, self.window), PAD, np.int32)
                padded[0, : len(window)] = window
                logits = np.asarray(self._full(padded))[0, len(window) - 1, :VOCAB_SIZE]
                if in_grammar:
                    logits = np.asarray(grammar.mask(logits[None], rules))[0]
                tokens = [choose(logits, rng, *settings)]
                rules = grammar.advance(rules, np.int32(tokens[0]))
            for token in tokens:
                if token == END and stop_at_end:
                    return np.array(generated, np.int32)
                generated.append(token)
                context.append(token)
                elapsed += _shift_seconds(token)
                if seconds is not None and elapsed >= seconds:
                    return ended_at(np.array(generated, np.int32), seconds, np.array(context[:primer_length]))
        return np.array(generated, np.int32)


def ended_at(new: np.ndarray, seconds: float, primer: np.ndarray) -> np.ndarray:
    """New tokens whose last time shift reached `seconds`: that shift cut to end exactly there (on
    the 10 ms grid), then a note-off for every key still sounding, so no note hangs at the end."""
    steps = int(round(seconds * STEPS_PER_SECOND))
    shifts = np.array([round(_shift_seconds(int(t)) * STEPS_PER_SECOND) for t in new])
    over = int(shifts.sum()) - steps
    new = new.copy()
    if 0 < over < shifts[-1]:
        new[-1] = TIME_SHIFT + shifts[-1] - over - 1
    states = grammar.key_states(np.concatenate([primer, new]), start_of_piece=True)[-1]
    sounding = np.flatnonzero(states == grammar.SOUNDING)
    return np.concatenate([new, NOTE_OFF + sounding]).astype(np.int32)
