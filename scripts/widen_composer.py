"""Widen a trained Music Transformer to twice its model and feed-forward width without changing
what it computes (function-preserving growth, as in Net2Net): the deeper growth of
scripts/grow_composer.py adds blocks; this one doubles every block's width.

    python scripts/widen_composer.py compose/checkpoints/default.keras OUT.keras

How: every unit is duplicated. The residual stream x becomes [x, x] (a layer norm of it has the
same mean and variance, so it too gives [n, n]); each head keeps its place and doubles its size,
[q, q], [k, k], [v, v]; each feed-forward unit appears twice. A layer that writes a duplicated
quantity writes both copies; a layer that reads one splits each weight between the two copies
at a random ratio, so the sum it computes is unchanged, yet the copies take different gradients
and grow apart in training (with an even split they would stay twins forever). Queries are
scaled by 1/sqrt(2): a head's dot products double while its scale 1/sqrt(head size) shrinks by
sqrt(2) only. The heads' count stays, so the relative-position embeddings double in size too.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import keras
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compose.model import MusicTransformer, build_model  # noqa: E402
from stages.contract import save_model_atomic  # noqa: E402


def written_twice(weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """The weights of an output that is duplicated: each copy gets the same ones."""
    return np.concatenate([weights, weights], axis=axis)


def read_split(weights: np.ndarray, rng: np.random.Generator, axis: int = 0) -> np.ndarray:
    """The weights reading a duplicated input: each one split between its two copies, a share
    drawn from [0.25, 0.75] for the first and the rest for the second."""
    share = rng.uniform(0.25, 0.75, weights.shape).astype(weights.dtype)
    return np.concatenate([share * weights, (1 - share) * weights], axis=axis)


def each_head_twice(weights: np.ndarray, heads: int) -> np.ndarray:
    """`written_twice` for each head's block of the last axis (head-major, as the attention lays
    it out), so that a head's doubled units stay together."""
    by_head = weights.reshape(weights.shape[:-1] + (heads, -1))
    return written_twice(by_head).reshape(weights.shape[:-1] + (-1,))


def widen(model: MusicTransformer, seed: int = 0) -> MusicTransformer:
    c = model.config
    if c.architecture != "relative":
        # The absolute baseline adds sinusoids of the model width, which no duplicate reproduces.
        raise ValueError(f"only the relative Music Transformer widens exactly, not {c.architecture!r}")
    rng = np.random.default_rng(seed)
    wide = build_model(dataclasses.replace(c, model_dim=2 * c.model_dim, ff_dim=2 * c.ff_dim))
    heads = c.num_heads

    (embedding,) = model.embedding.get_weights()
    # The model scales embeddings by sqrt(model_dim), which grows by sqrt(2).
    wide.embedding.set_weights([written_twice(embedding) / np.sqrt(2)])
    for old, new in zip(model.blocks, wide.blocks):
        for norm in ("attention_norm", "ff_norm"):
            getattr(new, norm).set_weights([written_twice(w) for w in getattr(old, norm).get_weights()])
        kernel, bias = old.attention.qkv.get_weights()
        q_scale = np.repeat([1 / np.sqrt(2), 1.0, 1.0], c.model_dim).astype(kernel.dtype)  # queries only
        kernel, bias = kernel * q_scale, bias * q_scale
        # q, k and v side by side, each head-major: 3 * heads blocks, each doubled in place.
        new.attention.qkv.set_weights([read_split(each_head_twice(kernel, 3 * heads), rng),
                                       each_head_twice(bias, 3 * heads)])
        kernel, bias = old.attention.out.get_weights()
        # Each head's rows read its own doubled units.
        by_head = kernel.reshape(heads, c.model_dim // heads, c.model_dim)
        kernel = read_split(by_head, rng, axis=1).reshape(-1, c.model_dim)
        new.attention.out.set_weights([written_twice(kernel), written_twice(bias)])
        distances = keras.ops.convert_to_numpy(old.attention.distance_embeddings)
        new.attention.distance_embeddings.assign(written_twice(distances))
        kernel, bias = old.ff_in.get_weights()
        new.ff_in.set_weights([read_split(written_twice(kernel), rng), written_twice(bias)])
        kernel, bias = old.ff_out.get_weights()
        new.ff_out.set_weights([written_twice(read_split(kernel, rng)), written_twice(bias)])
    wide.final_norm.set_weights([written_twice(w) for w in model.final_norm.get_weights()])
    kernel, bias = model.logits.get_weights()
    wide.logits.set_weights([read_split(kernel, rng), bias])
    return wide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="for the random splits of the weights")
    args = parser.parse_args()
    if args.out.exists() or args.out == args.model:
        parser.error(f"{args.out} exists: not overwriting it")
    try:
        wide = widen(keras.saving.load_model(args.model, compile=False), args.seed)
    except ValueError as error:
        parser.error(str(error))
    save_model_atomic(wide, args.out)
    print(f"{args.out}: width {wide.config.model_dim}, feed-forward {wide.config.ff_dim}, {wide.count_params():,} parameters")


if __name__ == "__main__":
    main()
