"""Saved composers as sets of weights: the mean of several (Polyak / stochastic weight averaging:
the mean of a run's last epochs often scores better than any one of them, for nothing), and
copies without optimizer state, in float16 when a checkpoint must travel small (half the size;
loading gives float32 weights again)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from compose.model import build_model
from stages.contract import save_model_atomic


def average(models: list[keras.Model]) -> list[np.ndarray]:
    """The mean of each floating-point weight over `models` (one architecture); others (counters,
    seeds) from the last."""
    weights = [model.get_weights() for model in models]
    shapes = [[w.shape for w in ws] for ws in weights]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("the models differ in their weights' shapes: not one architecture")
    if len({repr(model.config) for model in models}) > 1:
        raise ValueError("the models have different configs")
    return [np.mean(group, axis=0, dtype=np.float64).astype(group[-1].dtype)
            if np.issubdtype(group[-1].dtype, np.floating) else group[-1]
            for group in zip(*weights)]


def save_weights_only(model: keras.Model, path: Path | str, weights: list[np.ndarray] | None = None,
                      float16: bool = False) -> None:
    """A `.keras` of the model (with `weights` instead of its own) and no optimizer state: a fresh,
    uncompiled copy; with `float16`, its weights stored as float16."""
    weights = model.get_weights() if weights is None else weights
    previous = keras.config.dtype_policy()
    try:
        if float16:  # variables created under this policy are float16; the config does not keep it
            keras.config.set_dtype_policy("float16")
        copy = build_model(model.config)
        copy.set_weights(weights)
        save_model_atomic(copy, Path(path))
    finally:
        keras.config.set_dtype_policy(previous)


def describe(model: keras.Model, out: Path) -> int:
    """Print what a compose tool wrote (blocks, width, parameters, size); the exit status 0."""
    c = model.config
    print(f"{out}: {c.num_layers} blocks of width {c.model_dim}, feed-forward {c.ff_dim}, "
          f"{model.count_params():,} parameters ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


def average_from(settings) -> int:
    """`w2m2w compose-tools average`."""
    if settings.out in settings.inputs:
        raise ValueError(f"{settings.out} is one of the inputs: not overwriting it")
    models = [keras.saving.load_model(path, compile=False) for path in settings.inputs]
    save_weights_only(models[-1], settings.out, average(models))
    print(f"{settings.out}: the mean of {len(models)} models")
    return 0


def compact_from(settings) -> int:
    """`w2m2w compose-tools compact`."""
    model = keras.saving.load_model(settings.model, compile=False)
    save_weights_only(model, settings.out, float16=True)
    return describe(model, settings.out)
