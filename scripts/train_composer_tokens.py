"""Go on training a composer from a token file (scripts/encode_corpus.py) for a fixed wall-clock
budget: for an accelerator machine, where neither TensorFlow nor note-seq is installed.

    KERAS_BACKEND=jax python scripts/train_composer_tokens.py train.npz OUT --from compose/checkpoints/default.keras \\
        --validation validation.npz --minutes 7 --batch-size 64 --learning-rate 4e-4

Crops are those of `w2m2w train compose` (compose.corpus: whole pieces' tokens cut at random
places, transposed by up to +-3 semitones); the token file holds the time stretches. The
learning rate warms up, then follows a cosine over the time budget, set at each epoch's start.
`--grow-layers` and `--widen` first grow the model, deeper (scripts/grow_composer.py) or twice
as wide (scripts/widen_composer.py), computing what it did. `--steps` budgets optimizer steps
instead of minutes, for a run that means the same on any machine. The run writes
OUT/final.keras and, averaged over the epochs after `--average-from` of the budget,
OUT/mean.keras (weights only; no optimizer), with OUT/history.csv (for scripts/ship_model.py),
and prints the validation NLL per event as it goes (512-token chunks,
as `w2m2w evaluate compose` scores them, without the grammar's renormalization).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

from compose.config import ComposerConfig  # noqa: E402
from compose.corpus import TokenCrops, even_spread, load_token_file  # noqa: E402
from compose.evaluate import token_nll_per_event  # noqa: E402
from compose.model import build_model  # noqa: E402
from compose.vocabulary import PAD  # noqa: E402
from grow_composer import grow  # noqa: E402
from stages.contract import save_model_atomic  # noqa: E402
from widen_composer import widen  # noqa: E402


def nll_per_event(model: keras.Model, pieces: list[np.ndarray], length: int) -> float:
    """compose/evaluate.py's figure, without the grammar's renormalization (it needs note-seq)."""
    return token_nll_per_event(model, pieces, length, batch_size=64, in_grammar=False)["nll_per_event"]


class TimeBudget(keras.callbacks.Callback):
    """Sets each epoch's learning rate from the share of the budget spent, in seconds or (with
    `steps`) optimizer steps (linear warm-up over the first epochs, then a cosine to `floor` of
    the peak), stops when the budget is spent, keeps a running sum of the weights after
    `average_from`, and scores validation now and then."""

    def __init__(self, seconds: float | None, peak: float, floor: float, warmup_epochs: int, average_from: float,
                 validation: list[np.ndarray], length: int, score_every_s: float, history: Path | None = None,
                 steps: int | None = None):
        super().__init__()
        self.history = history  # a CSV of the epochs, as stages.training writes (scripts/ship_model.py reads it)
        if history:
            history.write_text("epoch,loss,learning_rate,val_nll_per_event\n")
        self.steps, self.seconds, self.peak, self.floor, self.warmup_epochs = steps, seconds, peak, floor, warmup_epochs
        self.average_from, self.validation, self.length, self.score_every_s = average_from, validation, length, score_every_s
        self.started = self.epoch_started = self.scored = time.monotonic()
        self.sum, self.averaged = None, 0

    def spent(self) -> float:
        if self.steps:
            return int(self.model.optimizer.iterations) / self.steps
        return (time.monotonic() - self.started) / self.seconds

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()
        if epoch < self.warmup_epochs:
            rate = self.peak * (epoch + 1) / self.warmup_epochs
        else:
            rate = self.floor + (self.peak - self.floor) * 0.5 * (1 + math.cos(math.pi * min(self.spent(), 1.0)))
        self.model.optimizer.learning_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        # Stop where one more epoch would overrun the budget, so a run ends on time.
        spent = self.spent() if self.steps else self.spent() + (now - self.epoch_started) / self.seconds
        if spent >= self.average_from:
            weights = self.model.get_weights()
            self.sum = weights if self.sum is None else [s + w for s, w in zip(self.sum, weights)]
            self.averaged += 1
        line = (f"epoch {epoch + 1}: {time.monotonic() - self.started:.0f} s, lr {float(self.model.optimizer.learning_rate):.2e}, "
                f"loss {logs['loss']:.4f}, averaged {self.averaged}")
        if self.validation and (now - self.scored >= self.score_every_s or spent >= 1.0):
            self.scored = now
            line += f", validation {nll_per_event(self.model, self.validation, self.length):.4f}"
        print(line, flush=True)
        if self.history:
            with self.history.open("a") as handle:
                handle.write(f"{epoch},{logs['loss']:.6f},{float(self.model.optimizer.learning_rate):.4e},"
                             f"{line.split('validation ')[-1] if 'validation' in line else ''}\n")
        if spent >= 1.0:
            self.model.stop_training = True

    def mean_weights(self):
        return None if self.sum is None else [s / self.averaged for s in self.sum]


def save_weights_only(config: ComposerConfig, weights, path: Path) -> None:
    """A `.keras` of the model with these weights and no optimizer state (a fresh, uncompiled copy)."""
    model = build_model(config)
    model.set_weights(weights)
    save_model_atomic(model, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tokens", type=Path, help="training pieces (scripts/encode_corpus.py)")
    parser.add_argument("out", type=Path, help="folder for final.keras and mean.keras")
    parser.add_argument("--from", dest="initial", type=Path, required=True, help="the trained composer to go on from")
    parser.add_argument("--grow-layers", type=int, help="first grow the model to this many blocks (scripts/grow_composer.py)")
    parser.add_argument("--widen", action="store_true", help="then double its width (scripts/widen_composer.py)")
    parser.add_argument("--validation", type=Path, help="validation pieces (scripts/encode_corpus.py --split validation)")
    parser.add_argument("--validation-pieces", type=int, default=24, help="an even spread of this many (0: all)")
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--minutes", type=float, help="training time budget")
    limit.add_argument("--steps", type=int, help="training budget in optimizer steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sequence-length", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=4e-4, help="peak")
    parser.add_argument("--floor", type=float, default=0.05, help="the last learning rate, as a share of the peak")
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--average-from", type=float, default=0.5, help="share of the budget after which weights are averaged")
    parser.add_argument("--score-every", type=float, default=60, help="score validation at the first epoch end after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(args.seed)
    model = keras.saving.load_model(args.initial, compile=False)
    if args.grow_layers:
        model = grow(model, args.grow_layers)
    if args.widen:
        model = widen(model, args.seed)
    config = dataclasses.replace(model.config, sequence_length=args.sequence_length, batch_size=args.batch_size)
    model.config = config
    # A plain learning rate, not compose.model's schedule: TimeBudget sets it each epoch.
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, global_clipnorm=config.clip_norm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD), jit_compile=True)
    print(f"{keras.backend.backend()} backend, {model.count_params():,} parameters, {config.num_layers} blocks "
          f"of width {config.model_dim}", flush=True)

    train = load_token_file(args.tokens)
    validation = even_spread(load_token_file(args.validation), args.validation_pieces) if args.validation else []
    print(f"{len(train)} training pieces ({sum(map(len, train)):,} tokens), {len(validation)} validation pieces", flush=True)
    if validation:
        print(f"validation before: {nll_per_event(model, validation, 512):.4f}", flush=True)

    budget = TimeBudget(args.minutes and args.minutes * 60, args.learning_rate, args.floor * args.learning_rate, args.warmup_epochs,
                        args.average_from, validation, 512, args.score_every, args.out / "history.csv", args.steps)
    crops = TokenCrops(train, args.batch_size, args.sequence_length, args.steps_per_epoch, args.seed)
    model.fit(crops, epochs=1_000_000, callbacks=[budget], verbose=0)

    save_weights_only(config, model.get_weights(), args.out / "final.keras")
    mean = budget.mean_weights()
    if mean is not None:
        save_weights_only(config, mean, args.out / "mean.keras")
        if validation:
            model.set_weights(mean)
            print(f"validation of the mean of {budget.averaged} epochs: {nll_per_event(model, validation, 512):.4f}", flush=True)
    print(f"done: {int(model.optimizer.iterations)} steps", flush=True)


if __name__ == "__main__":
    main()
