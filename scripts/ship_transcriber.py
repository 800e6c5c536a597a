"""Copy a training run's best model into the repository as the transcription stage's default.

    python scripts/ship_transcriber.py RUN_DIR [--name default]

Saves the weights without the optimizer state (a third of the size) as
transcribe/checkpoints/<name>.keras, and writes <name>.json beside it: where it came from, the
epoch and validation figures it reached.
"""

from __future__ import annotations

import argparse
import csv
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
    args = parser.parse_args()
    trained = keras.saving.load_model(args.run_dir / "best.keras", compile=False)
    slim = build_model(trained.config)
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
        "validation": {k: round(float(v), 4) for k, v in best.items() if k.startswith("val_")},
    }, indent=2) + "\n")
    print(target, content_id(target))


if __name__ == "__main__":
    main()
