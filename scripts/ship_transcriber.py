"""Copy a training run's best model into the repository as the transcription stage's default.

    python scripts/ship_transcriber.py RUN_DIR [--name default] [--onset-threshold 0.3 --frame-threshold 0.2]

Saves the weights without the optimizer state (a third of the size) as
transcribe/checkpoints/<name>.keras, and writes <name>.json beside it: where it came from, the
epoch and validation figures it reached. Decoding thresholds (chosen on validation with
scripts/tune_thresholds.py) travel inside the model's config.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.contract import content_id  # noqa: E402
from transcribe.model import build_model  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parents[1] / "transcribe" / "checkpoints"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", default="default")
    parser.add_argument("--onset-threshold", type=float)
    parser.add_argument("--frame-threshold", type=float)
    args = parser.parse_args()
    trained = keras.saving.load_model(args.run_dir / "best.keras", compile=False)
    config = dataclasses.replace(trained.config,
                                 onset_threshold=args.onset_threshold or trained.config.onset_threshold,
                                 frame_threshold=args.frame_threshold or trained.config.frame_threshold)
    slim = build_model(config)
    slim.set_weights(trained.get_weights())
    target = CHECKPOINTS / f"{args.name}.keras"
    target.parent.mkdir(parents=True, exist_ok=True)
    slim.save(target)
    with open(args.run_dir / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    best = max(history, key=lambda row: float(row.get("val_note_f1") or 0))
    (CHECKPOINTS / f"{args.name}.json").write_text(json.dumps({
        "checkpoint": target.name,
        "sha256_16": content_id(target),
        "config": trained.config.name,
        "parameters": slim.count_params(),
        "best_epoch": int(best["epoch"]) + 1,
        "epochs_trained": len(history),
        "onset_threshold": config.onset_threshold,
        "frame_threshold": config.frame_threshold,
        "validation_during_training_at_0.5": {k: round(float(v), 4) for k, v in best.items() if k.startswith("val_")},
    }, indent=2) + "\n")
    print(target, content_id(target))


if __name__ == "__main__":
    main()
