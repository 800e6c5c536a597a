"""Music Transformer sampling speed on this CPU: tokens per second with the key/value cache and
without it (re-running the whole window per token), when the context holds 512 and 2048 tokens.

    python benchmarks/compose_sampling.py [--checkpoint compose/checkpoints/default.keras]

Writes benchmarks/results/compose_sampling.json. Without a checkpoint, an untrained default
model is timed (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import record  # noqa: E402
from compose.config import ComposerConfig  # noqa: E402
from compose.model import build_model  # noqa: E402
from compose.sample import Sampler  # noqa: E402
from compose.tokens import VOCAB_SIZE  # noqa: E402

TIMED_TOKENS = 64


def tokens_per_second(sampler: Sampler, context: int, use_cache: bool) -> float:
    """Speed of generating the last TIMED_TOKENS tokens of a `context`-token window."""
    primer = np.random.default_rng(0).integers(2, VOCAB_SIZE, context - TIMED_TOKENS).astype(np.int32)
    sampler.generate(primer, max_tokens=4, use_cache=use_cache, stop_at_end=False)  # compile
    start = time.perf_counter()
    sampler.generate(primer, max_tokens=TIMED_TOKENS, use_cache=use_cache, stop_at_end=False)
    return TIMED_TOKENS / (time.perf_counter() - start)


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
    record.save("compose_sampling", figures, notes="Cached: one compiled step per token against a "
                "key/value cache; uncached: one compiled forward pass over the whole window per token.")


if __name__ == "__main__":
    main()
