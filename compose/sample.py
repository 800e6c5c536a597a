"""Sampling from the Music Transformer: incremental decoding with a key/value cache.

Each new token attends to the cached keys and values of the window instead of re-running the
whole prefix, in one compiled step per token. The cache holds `window` positions; when it is
full, the last half of the window is re-encoded in one pass (relative attention depends only on
distances, so the kept tokens see what they saw before, less the dropped ones) and generation
goes on: pieces may be far longer than the training length.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
from note_seq.performance_lib import PerformanceEvent

from compose.model import MusicTransformer
from compose.tokens import END, MAX_SHIFT_STEPS, PAD, SPECIAL_TOKENS, STEPS_PER_SECOND, ENCODING

# With nothing to continue, generation starts after a short time shift: the quietest opening.
OPENING = SPECIAL_TOKENS + ENCODING.encode_event(PerformanceEvent(PerformanceEvent.TIME_SHIFT, MAX_SHIFT_STEPS // 4))


def compiled(function: Callable) -> Callable:
    """One graph per function for the running backend, so a step is one call, not hundreds."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def choose(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0) -> int:
    """Sample a token from (vocab,) logits with temperature, then top-k and nucleus (top-p)."""
    logits = np.asarray(logits, np.float64).copy()
    logits[PAD] = -np.inf  # padding is never a next event
    if temperature <= 0:
        return int(np.argmax(logits))
    logits /= temperature
    if 0 < top_k < len(logits):
        logits[logits < np.sort(logits)[-top_k]] = -np.inf
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < top_p  # the smallest set reaching top_p
        mask = np.zeros_like(probs, bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))


def _shift_seconds(token: int) -> float:
    if token < SPECIAL_TOKENS:
        return 0.0
    event = ENCODING.decode_event(token - SPECIAL_TOKENS)
    return event.event_value / STEPS_PER_SECOND if event.event_type == PerformanceEvent.TIME_SHIFT else 0.0


class Sampler:
    def __init__(self, model: MusicTransformer, window: int | None = None):
        if not isinstance(model, MusicTransformer):
            raise TypeError("incremental sampling needs a MusicTransformer")
        self.model = model
        self.window = window or model.config.sequence_length
        self._step = compiled(lambda token, cache, position: model.step(token, cache, position))
        self._prefill = compiled(lambda tokens: model.prefill(tokens, self.window))
        self._full = compiled(lambda tokens: model(tokens))

    def generate(self, primer: np.ndarray | None = None, max_tokens: int = 512, seconds: float | None = None,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
                 use_cache: bool = True, stop_at_end: bool = True) -> np.ndarray:
        """New tokens after the primer (at most `max_tokens`; stops early at END, or once the
        new music lasts `seconds`)."""
        rng = np.random.default_rng(seed)
        context = [int(t) for t in (primer if primer is not None and len(primer) else [])]
        if not context:
            # Nothing to condition on: start from a time shift, the quietest possible opening.
            context = [OPENING]
        generated: list[int] = []
        elapsed = 0.0
        logits, cache, position = None, None, 0
        while len(generated) < max_tokens:
            if use_cache:
                if cache is None or position >= self.window:
                    kept = context[-(self.window // 2):] if cache is not None else context[-self.window:]
                    logits, cache = self._prefill(np.array([kept], np.int32))
                    position = len(kept)
                next_logits = np.asarray(logits)[0]
            else:
                window = context[-self.window:]
                padded = np.full((1, self.window), PAD, np.int32)
                padded[0, : len(window)] = window
                next_logits = np.asarray(self._full(padded))[0, len(window) - 1]
            token = choose(next_logits, rng, temperature, top_k, top_p)
            if token == END and stop_at_end:
                break
            generated.append(token)
            context.append(token)
            elapsed += _shift_seconds(token)
            if seconds is not None and elapsed >= seconds:
                break
            if use_cache:
                logits, cache = self._step(np.array([[token]], np.int32), cache, np.int32(position))
                position += 1
        return np.array(generated, np.int32)
