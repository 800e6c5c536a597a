"""Music Transformer training speed on this CPU: seconds per step and tokens per second of the
default config (batch 8 x 512 tokens), compiled with XLA (what `w2m2w train compose` uses) and
without it, in float32 (what we train in) and, with --bfloat16, also in Keras' mixed_bfloat16
policy (bfloat16 matmuls, which this CPU's AMX units could run faster).

    TF_NUM_INTRAOP_THREADS=2 python -m benchmarks.compose_training_speed [--bfloat16]

Writes benchmarks/results/compose_training_speed.json. Speed does not depend on the weights or the
tokens, so an untrained model is timed on random tokens.
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

from benchmarks import record
from compose.config import ComposerConfig
from compose.model import build_model, compile_model
from compose.tokens import VOCAB_SIZE


def seconds_per_step(xla: bool, steps: int, policy: str = "float32") -> float:
    config = ComposerConfig.default()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = compile_model(build_model(config))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.jit_compile = xla
    tokens = np.random.default_rng(0).integers(2, VOCAB_SIZE, (config.batch_size, config.sequence_length + 1))
    inputs, targets = tokens[:, :-1].astype(np.int32), tokens[:, 1:].astype(np.int32)
    for _ in range(3):  # trace, compile, warm up
        model.train_on_batch(inputs, targets)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, targets)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting (default: 10)")
    parser.add_argument("--bfloat16", action="store_true", help="also time the mixed_bfloat16 policy")
    args = parser.parse_args()
    config = ComposerConfig.default()
    tokens_per_step = config.batch_size * config.sequence_length
    figures = {"model": config.name, "batch": config.batch_size, "sequence_length": config.sequence_length,
               "intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS", "all cores")}
    for name, xla in (("xla", True), ("no_xla", False)):
        seconds = seconds_per_step(xla, args.steps)
        figures[f"{name}_seconds_per_step"] = round(seconds, 3)
        figures[f"{name}_tokens_per_second"] = round(tokens_per_step / seconds)
    figures["xla_speedup"] = round(figures["no_xla_seconds_per_step"] / figures["xla_seconds_per_step"], 2)
    if args.bfloat16:
        for name, xla in (("bfloat16_xla", True), ("bfloat16_no_xla", False)):
            seconds = seconds_per_step(xla, args.steps, "mixed_bfloat16")
            figures[f"{name}_seconds_per_step"] = round(seconds, 3)
            figures[f"{name}_tokens_per_second"] = round(tokens_per_step / seconds)
    record.save("compose_training_speed", figures,
                notes="train_on_batch of the default Music Transformer on random tokens, after three warm-up "
                      "steps; the machine otherwise idle.")


if __name__ == "__main__":
    main()
