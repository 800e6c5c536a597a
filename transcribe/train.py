"""Train Onsets and Frames on the Beam TFRecords: random crops, Adam with decay and clipping,
checkpoints that resume after interruption, TensorBoard logs, validation mir_eval each epoch.

RUN_DIR/
  config.json      the TranscriberConfig
  last.keras       the model and optimizer after the latest epoch; a rerun (killed, or asked for
  state.json       more steps) resumes from it at the epoch state.json names
  best.keras       the model with the best validation note F1 so far (the one to ship)
  history.csv      losses and validation metrics per epoch
  logs/            TensorBoard
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras
import numpy as np

from transcribe.config import TranscriberConfig
from transcribe.dataset import RandomCrops, ShardCache, build_cache, span_notes
from transcribe.decode import decode_notes
from transcribe.infer import Transcriber
from transcribe.metrics import mean_metrics, transcription_metrics
from transcribe.model import build_model, compile_model

log = logging.getLogger(__name__)


class ValidationMetrics(keras.callbacks.Callback):
    """mir_eval metrics on held-out spans at the end of each epoch, added to the logs as
    `val_note_f1`, `val_frame_f1`, ... so checkpoints and TensorBoard can use them."""

    def __init__(self, caches: list[ShardCache], spans: int, seed: int = 0):
        super().__init__()
        everything = [(c, s) for c, cache in enumerate(caches) for s in range(len(cache.spans))]
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(everything), size=min(spans, len(everything)), replace=False)
        self.caches, self.spans = caches, [everything[i] for i in sorted(chosen)]

    def evaluate(self, model) -> dict[str, float]:
        transcriber = Transcriber(model)
        config = model.config
        per_span = []
        for c, s in self.spans:
            cache = self.caches[c]
            first, length = cache.spans[s]
            probs = transcriber.predict(np.asarray(cache.features[first:first + length], np.float32))
            estimate = decode_notes(probs["frames"], probs["onsets"], probs["velocities"], config.frames_per_second,
                                    config.frame_threshold, config.onset_threshold)
            per_span.append(transcription_metrics(span_notes(cache, s), estimate, config.frames_per_second))
        return mean_metrics(per_span)

    def on_epoch_end(self, epoch, logs=None):
        metrics = self.evaluate(self.model)
        for key, value in metrics.items():
            if key.endswith("/f1"):
                logs["val_" + key[:-3].replace("-", "_").replace("/", "_") + "_f1"] = value
        print(f"\nvalidation (epoch {epoch + 1}): " + ", ".join(
            f"{k}={v:.3f}" for k, v in sorted(logs.items()) if k.startswith("val_")))


def train(tfrecord_dir: Path | str, run_dir: Path | str, config: TranscriberConfig, steps: int,
          steps_per_epoch: int = 250, validation_spans: int = 32, cache_dir: Path | str | None = None,
          cache_workers: int = 1, seed: int = 0) -> keras.Model:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    if config_path.exists() and TranscriberConfig.from_dict(json.loads(config_path.read_text())) != config:
        raise ValueError(f"{run_dir} was trained with another config; use a new run folder")
    config_path.write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")

    cache_dir = Path(cache_dir or Path(tfrecord_dir) / "transcription-cache")
    log.info("caching training and validation examples under %s", cache_dir)
    train_caches = [ShardCache.open(p) for p in build_cache(tfrecord_dir, "train", cache_dir, config, cache_workers)]
    valid_caches = [ShardCache.open(p) for p in build_cache(tfrecord_dir, "validation", cache_dir, config, cache_workers)]

    model, initial_epoch = _resume(run_dir, config, seed)
    callbacks = [
        ValidationMetrics(valid_caches, validation_spans, seed),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor="val_note_f1", mode="max",
                                        save_best_only=True, initial_value_threshold=_best_so_far(run_dir)),
        SaveState(run_dir),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    try:
        import tensorflow  # noqa: F401 - TensorBoard's writer needs it (absent on some GPU hosts)

        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq=50))
    except ImportError:
        log.warning("tensorflow not installed: no TensorBoard logs")
    crops = RandomCrops(train_caches, config, steps_per_epoch, seed=seed + initial_epoch)
    epochs = max(1, steps // steps_per_epoch)
    if initial_epoch < epochs:
        model.fit(crops, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=2)
    return model


class SaveState(keras.callbacks.Callback):
    """After each epoch: last.keras (weights and optimizer) and state.json, both atomically."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        partial = self.run_dir / ".last.partial.keras"
        self.model.save(partial)
        partial.replace(self.run_dir / "last.keras")
        state = {"epoch": epoch + 1, "val_note_f1": _best_so_far(self.run_dir, logs)}
        (self.run_dir / ".state.partial").write_text(json.dumps(state) + "\n")
        (self.run_dir / ".state.partial").replace(self.run_dir / "state.json")


def _best_so_far(run_dir: Path, logs: dict | None = None) -> float | None:
    """The best validation note F1 of this run (state.json and the latest logs)."""
    values = [json.loads((run_dir / "state.json").read_text()).get("val_note_f1")] if (run_dir / "state.json").exists() else []
    values.append((logs or {}).get("val_note_f1"))
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _resume(run_dir: Path, config: TranscriberConfig, seed: int) -> tuple[keras.Model, int]:
    """The model to train and the epoch to start at: from last.keras when the run has one."""
    state_path, last = run_dir / "state.json", run_dir / "last.keras"
    if state_path.exists() and last.exists():
        epoch = json.loads(state_path.read_text())["epoch"]
        log.info("resuming %s at epoch %d", run_dir, epoch + 1)
        return keras.saving.load_model(last), epoch
    keras.utils.set_random_seed(seed)
    return compile_model(build_model(config)), 0
