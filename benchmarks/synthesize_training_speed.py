"""Synthesizer training speed on this CPU under each Keras backend: seconds per step of the
parallel WaveNet generator (`default`: STFT loss; `adversarial`: the same with Parallel WaveGAN's
discriminator), a batch of its training crops (4 x 8,192 samples at 16 kHz), under TensorFlow
(what `w2m2w train synthesize` has used here) and under JAX (how a lent accelerator trains it,
and an option here too).

    python -m benchmarks.synthesize_training_speed [--steps 10]

Each backend runs in its own process (Keras picks its backend at import). Speed does not depend on
the weights or the audio, so untrained networks are timed on random inputs. Writes
benchmarks/results/synthesize_training_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import record

CONFIGS = ("default", "adversarial")
BACKENDS = ("tensorflow", "jax")


def seconds_per_step(config_name: str, steps: int) -> float:
    """Timed in this process, under its Keras backend."""
    import keras
    import numpy as np

    from synthesize.adversarial import build_adversarial, compile_adversarial
    from synthesize.config import SynthesizerConfig
    from synthesize.parallel import build_parallel, compile_parallel
    from synthesize.wavenet import ROLL_CHANNELS

    config = SynthesizerConfig.named(config_name)
    keras.utils.set_random_seed(0)
    if config.discriminator_layers:
        model = compile_adversarial(build_adversarial(config))
    else:
        model = compile_parallel(build_parallel(config))
    rng = np.random.default_rng(0)
    batch, samples = config.batch_size, config.crop_samples
    frames = samples // config.samples_per_frame + 2 * sum(config.context_dilations)
    inputs = {"noise": rng.standard_normal((batch, samples)).astype(np.float32),
              "roll": rng.uniform(0, 1, (batch, frames, ROLL_CHANNELS)).astype(np.float32),
              "excitation": rng.uniform(-1, 1, (batch, samples, config.excitation_channels)).astype(np.float32)}
    audio = 0.02 * rng.standard_normal((batch, samples)).astype(np.float32)
    for _ in range(3):  # trace, compile, warm up
        model.train_on_batch(inputs, audio)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, audio)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting (default: 10)")
    parser.add_argument("--one", metavar="CONFIG", help=argparse.SUPPRESS)  # a child process: time CONFIG, print
    args = parser.parse_args()
    if args.one:
        print(json.dumps(seconds_per_step(args.one, args.steps)))
        return
    figures = {"intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS", "all cores")}
    for backend in BACKENDS:
        for config in CONFIGS:
            child = subprocess.run([sys.executable, "-m", "benchmarks.synthesize_training_speed", "--one", config,
                                    "--steps", str(args.steps)], env={**os.environ, "KERAS_BACKEND": backend},
                                   capture_output=True, text=True, check=True)
            figures[f"{backend}_{config}_seconds_per_step"] = round(json.loads(child.stdout.splitlines()[-1]), 3)
            print(backend, config, figures[f"{backend}_{config}_seconds_per_step"], flush=True)
    for config in CONFIGS:
        figures[f"jax_speedup_{config}"] = round(figures[f"tensorflow_{config}_seconds_per_step"]
                                                 / figures[f"jax_{config}_seconds_per_step"], 2)
    record.save("synthesize_training_speed", figures,
                notes="train_on_batch of the untrained generator (and discriminator) on random inputs, after "
                      "three warm-up steps; each backend in its own process; the machine otherwise idle.")


if __name__ == "__main__":
    main()
