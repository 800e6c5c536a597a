"""Copy a training run's best model into the repository as a stage's checkpoint.

    python scripts/ship_model.py transcribe RUN_DIR [--name default]   # then scripts/tune_thresholds.py --apply
    python scripts/ship_model.py compose RUN_DIR [--name default]
    python scripts/ship_model.py synthesize RUN_DIR [--name default] [--set sampling_temperature=0.05]
    python scripts/ship_model.py compose RUN_DIR --model MEAN.keras --epoch 18 --selected-on "..." \
        --validation val_nll_per_event=2.49   # a model averaged by scripts/average_weights.py

Saves the weights without the optimizer state (a third of the size) as
<stage>/checkpoints/<name>.keras and writes <name>.json beside it: where it came from, the epoch
it was selected at (best validation figure: note F1 for the transcriber, loss for the others)
and the validation figures it reached.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import keras

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stages.contract import content_id  # noqa: E402

# What each stage's training selects best.keras on, and whether higher or lower is better.
MONITOR = {"transcribe": ("val_note_f1", "max"), "compose": ("val_nll_per_event", "min"),
           "synthesize": ("val_loss", "min")}


def model_module(stage: str):
    """The stage's model module (importing it registers its Keras classes for loading)."""
    import importlib

    return importlib.import_module(f"{stage}.model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=sorted(MONITOR))
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", default="default")
    parser.add_argument("--trained-with", action="append", default=[],
                        help="the command(s) that trained the run, recorded in the JSON (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change an inference setting in the shipped config, e.g. sampling_temperature=0.05 "
                             "(chosen on validation; repeatable)")
    parser.add_argument("--model", type=Path, help="ship this saved model of the run instead of best.keras "
                        "(one picked on another validation figure), with --epoch")
    parser.add_argument("--epoch", type=int, help="the epoch (1-based) --model was saved at")
    parser.add_argument("--selected-on", help="what --model was picked on, for the record")
    parser.add_argument("--validation", action="append", default=[], metavar="NAME=VALUE",
                        help="the validation figures --model reached where history.csv lacks them "
                             "(a model averaged by scripts/average_weights.py), e.g. val_nll_per_event=2.49")
    args = parser.parse_args()
    if args.model and not (args.epoch and args.selected_on):
        parser.error("--model needs --epoch and --selected-on")
    if args.validation and not args.model:
        parser.error("--validation goes with --model (best.keras's figures are in history.csv)")
    build_model = model_module(args.stage).build_model
    trained = keras.saving.load_model(args.model or args.run_dir / "best.keras", compile=False)
    changes = {field: json.loads(value) for field, value in (item.split("=", 1) for item in args.set)}
    slim = build_model(dataclasses.replace(trained.config, **changes))
    slim.set_weights(trained.get_weights())
    target = REPO / args.stage / "checkpoints" / f"{args.name}.keras"
    target.parent.mkdir(parents=True, exist_ok=True)
    slim.save(target)
    with open(args.run_dir / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    monitor, mode = MONITOR[args.stage]
    if args.model:
        best = history[args.epoch - 1]
    elif mode == "min":
        best = min(history, key=lambda row: float(row.get(monitor) or "inf"))
    else:
        best = max(history, key=lambda row: float(row.get(monitor) or "-inf"))
    validation = {k: round(float(v), 4) for k, v in best.items() if k.startswith("val_") and v}
    validation.update((name, float(value)) for name, value in (item.split("=", 1) for item in args.validation))
    target.with_suffix(".json").write_text(json.dumps({
        "checkpoint": target.name,
        "sha256_16": content_id(target),
        "config": trained.config.name,
        "parameters": slim.count_params(),
        "selected_on": args.selected_on if args.model else f"{monitor} ({mode})",
        "best_epoch": int(best["epoch"]) + 1,
        "epochs_trained": len(history),
        "validation": validation,
        "training_loss": round(float(best["loss"]), 4),
        "trained_with": args.trained_with,
        **({"settings": changes} if changes else {}),
    }, indent=2) + "\n")
    print(target, content_id(target))


if __name__ == "__main__":
    main()
