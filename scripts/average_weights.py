"""Average the weights of several saved models of one run (Polyak / stochastic weight averaging):
the mean of the last epochs' weights often scores better than any one of them, for nothing.

    python scripts/average_weights.py compose OUT.keras EPOCH_A.keras EPOCH_B.keras ...

All inputs must be the same model (one config, the same weight shapes). Floating-point weights
are averaged; any others (counters, seeds) come from the last input. OUT holds the weights only,
no optimizer state; score it (`w2m2w evaluate compose ... --split validation --max-pieces 24`)
before shipping it with `scripts/ship_model.py --model OUT`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import keras
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.ship_model import MONITOR, model_module  # noqa: E402
from stages.contract import save_model_atomic  # noqa: E402


def average(models: list[keras.Model]) -> list[np.ndarray]:
    weights = [model.get_weights() for model in models]
    shapes = [[w.shape for w in ws] for ws in weights]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("the models differ in their weights' shapes: not one architecture")
    return [np.mean(group, axis=0, dtype=np.float64).astype(group[-1].dtype)
            if np.issubdtype(group[-1].dtype, np.floating) else group[-1]
            for group in zip(*weights)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=sorted(MONITOR))
    parser.add_argument("out", type=Path)
    parser.add_argument("inputs", type=Path, nargs="+")
    args = parser.parse_args()
    if args.out.exists() or args.out in args.inputs:
        parser.error(f"{args.out} exists: not overwriting it")
    build_model = model_module(args.stage).build_model
    models = [keras.saving.load_model(path, compile=False) for path in args.inputs]
    configs = {repr(model.config) for model in models}
    if len(configs) > 1:
        parser.error("the inputs have different configs")
    averaged = build_model(models[-1].config)
    averaged.set_weights(average(models))
    save_model_atomic(averaged, args.out)
    print(f"{args.out}: the mean of {len(models)} models")


if __name__ == "__main__":
    main()
