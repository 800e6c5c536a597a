"""Music Transformer sampling speed on this CPU: tokens per second with the key/value cache and
without it (re-running the whole window per token), when the context holds 512 and 2048 tokens.

    python -m benchmarks.compose_sampling [--checkpoint compose/checkpoints/default.keras]

Writes benchmarks/results/compose_sampling.json. Without a checkpoint, an untrained default
model is timed (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import record
from compose.config import ComposerConfig
from compose.model import build_model
from compose.sample import Sampler
from compose.tokens import VOCAB_SIZE

TIMED_TOKENS = 256


def seconds_for(sampler: Sampler, primer: np.ndarray, tokens: int, use_cache: bool) -> float:
    start = time.perf_counter()
    sampler.generate(primer, max_tokens=tokens, use_cache=use_cache, stop_at_end=False)
    return time.perf_counter() - start


def tokens_per_second(sampler: Sampler, context: int, use_cache: bool) -> float:
    """Steady speed of filling the last TIMED_TOKENS positions of a `context`-token window: the
    time of generating 32 + TIMED_TOKENS tokens after the primer less that of 32, so the primer's
    one-off encoding (and the compiled loop's start) is not counted."""
    timed = TIMED_TOKENS if use_cache else TIMED_TOKENS // 8  # uncached is slow: fewer suffice
    primer = np.random.default_rng(0).integers(2, VOCAB_SIZE, context - timed - 32).astype(np.int32)
    seconds_for(sampler, primer, 8, use_cache)  # compile
    return timed / (seconds_for(sampler, primer, 32 + timed, use_cache) - seconds_for(sampler, primer, 32, use_cache))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()
    if args.checkpoint:
        import keras

        model = keras.saving.load_model(args.checkpoint, compile=False)
    else:
        model = build_model(ComposerConfig.default())
    figures = {"model": model.config.name, "parameters": model.count_params(), "timed_tokens": TIMED_TOKENS}
    for context in (512, 2048):
        sampler = Sampler(model, window=context)
        cached = tokens_per_second(sampler, context, use_cache=True)
        uncached = tokens_per_second(sampler, context, use_cache=False)
        figures[f"cached_tokens_per_second_at_{context}"] = round(cached, 1)
        figures[f"uncached_tokens_per_second_at_{context}"] = round(uncached, 1)
        figures[f"speedup_at_{context}"] = round(cached / uncached, 1)
    record.save("compose_sampling", figures, notes="Cached: tokens drawn in one compiled (XLA) loop per "
                "32-token chunk against a key/value cache (for a model with an attention span, a ring buffer of "
                "its span: the cost per token stays that of a span-token context however long the context); "
                "uncached: one compiled forward pass over the whole window per token. Steady speed, the primer's "
                "one-off encoding not counted.")


if __name__ == "__main__":
    main()
