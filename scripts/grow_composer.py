"""Grow a trained Music Transformer deeper without changing what it computes (function-preserving
growth, as in progressive stacking): each new block is a copy of the block before it whose two
residual outputs (attention projection, feed-forward output) start at zero, so the grown model
predicts exactly what the small one did and training goes on from there with more capacity.

    python scripts/grow_composer.py compose/checkpoints/default.keras OUT.keras --layers 6

New blocks are spread evenly: growing 4 blocks to 6 puts a copy after the 2nd and the 4th.
Train OUT with `w2m2w train compose --from OUT.keras` under a config of that many layers.
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


def source_blocks(old: int, new: int) -> list[tuple[int, bool]]:
    """For each of `new` blocks: (index of the old block it copies, whether it is a new copy)."""
    plan, extra = [], new - old
    for i in range(old):
        plan.append((i, False))
        # After old block i, as many copies as bring the count to round((i + 1) * extra / old).
        plan += [(i, True)] * (round((i + 1) * extra / old) - round(i * extra / old))
    return plan


def grow(model: MusicTransformer, num_layers: int) -> MusicTransformer:
    if num_layers < model.config.num_layers:
        raise ValueError(f"growing only adds blocks: the model has {model.config.num_layers}, asked for {num_layers}")
    grown = build_model(dataclasses.replace(model.config, num_layers=num_layers))
    for name in ("embedding", "final_norm", "logits"):
        getattr(grown, name).set_weights(getattr(model, name).get_weights())
    for target, (source, is_copy) in zip(grown.blocks, source_blocks(model.config.num_layers, num_layers)):
        target.set_weights(model.blocks[source].get_weights())
        if is_copy:  # silent until trained: the residual stream passes through unchanged
            for layer in (target.attention.out, target.ff_out):
                layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, required=True, help="blocks of the grown model")
    args = parser.parse_args()
    if args.out.exists() or args.out == args.model:
        parser.error(f"{args.out} exists: not overwriting it")
    try:
        grown = grow(keras.saving.load_model(args.model, compile=False), args.layers)
    except ValueError as error:
        parser.error(str(error))
    save_model_atomic(grown, args.out)
    print(f"{args.out}: {args.layers} blocks, {grown.count_params():,} parameters")


if __name__ == "__main__":
    main()
