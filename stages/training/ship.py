"""Shipping a model: a training run's best model saved into a package as a stage's checkpoint.

The weights are saved without the optimizer state (a third of the size) as `<name>.keras`, with
`<name>.json` beside it: where it came from, the epoch it was selected at (best validation
figure: note F1 for the transcriber, loss for the others), the validation figures it reached and
the commands that made it; then its model card (`<name>.md`, stages/training/model_card.py),
without benchmark figures: the saved file is new (Keras stamps the date it was saved), so no
benchmark record can name its content id yet; regenerate the card after a benchmark runs on it.
`w2m2w ship` drives it; the caller imports the stage's model module (which registers its Keras
classes) and passes its `build_model`, so that this module imports no model package.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import keras

from stages.checkpoints import companion
from stages.contract import content_id, save_model_atomic, write_text_atomic
from stages.training.model_card import write_model_card

# What each stage's training selects best.keras on, and whether higher or lower is better.
MONITOR = {"transcribe": ("val_note_f1", "max"), "compose": ("val_nll_per_event", "min"),
           "synthesize": ("val_loss", "min")}
# A run that logs this instead selected on it (`train compose --labels-only`).
LABELLED = {"val_nll_per_event": "val_nll_per_event_labelled"}


def selected_row(history: list[dict[str, str]], monitor: str, mode: str, epoch: int | None = None) -> dict[str, str]:
    """The history row of the shipped epoch: `epoch` (1-based) when given, else the best by `monitor`."""
    if not history:
        raise ValueError("the run's history.csv has no epochs")
    if epoch is not None:
        if not 1 <= epoch <= len(history):
            raise ValueError(f"epoch {epoch} is not in the run's history (epochs 1 to {len(history)})")
        return history[epoch - 1]
    if mode == "min":
        return min(history, key=lambda row: float(row.get(monitor) or "inf"))
    return max(history, key=lambda row: float(row.get(monitor) or "-inf"))


def ship(stage: str, run_dir: Path, target: Path, build_model: Callable, model: Path | None = None,
         epoch: int | None = None, selected_on: str | None = None, validation: dict[str, float] | None = None,
         settings: dict[str, Any] | None = None, trained_with: Sequence[str] = ()) -> Path:
    """Save the run's best.keras (or `model`, saved at `epoch`, picked on `selected_on`) as `target`
    with its record and model card; `settings` change inference settings of the shipped config.
    Returns the record's path."""
    if model is not None and not (epoch and selected_on):
        raise ValueError("a model other than best.keras needs the epoch it was saved at and what it was selected on")
    if validation and model is None:
        raise ValueError("validation figures go with a model other than best.keras (best.keras's are in history.csv)")
    monitor, mode = MONITOR[stage]
    trained = keras.saving.load_model(model or run_dir / "best.keras", compile=False)
    settings = settings or {}
    slim = build_model(dataclasses.replace(trained.config, **settings))
    slim.set_weights(trained.get_weights())
    target.parent.mkdir(parents=True, exist_ok=True)
    save_model_atomic(slim, target)
    with open(run_dir / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    if history and LABELLED.get(monitor) in history[0]:
        monitor = LABELLED[monitor]
    best = selected_row(history, monitor, mode, epoch if model is not None else None)
    figures = {k: round(float(v), 4) for k, v in best.items() if k.startswith("val_") and v}
    figures.update(validation or {})
    record_path = companion(target, "record")
    write_text_atomic(record_path, json.dumps({
        "checkpoint": target.name,
        "sha256_16": content_id(target),
        "config": trained.config.name,
        "parameters": slim.count_params(),
        "selected_on": selected_on if model is not None else f"{monitor} ({mode})",
        "best_epoch": int(best["epoch"]) + 1,
        "epochs_trained": len(history),
        "validation": figures,
        "training_loss": round(float(best["loss"]), 4),
        "trained_with": list(trained_with),
        **({"settings": settings} if settings else {}),
    }, indent=2) + "\n")
    write_model_card(record_path)
    return record_path
