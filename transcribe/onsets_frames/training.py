"""Train Onsets and Frames on the Beam TFRecords: random crops, Adam with decay and clipping,
checkpoints that resume after interruption, TensorBoard logs, validation mir_eval each epoch.

The run folder's layout and resuming are stages.training.runs's; best.keras is the model with the
best validation note F1.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import numpy as np

from stages.training.runs import Monitor, prepare_run, resume, standard_callbacks
from transcribe.config import TranscriberConfig
from transcribe.dataset import RandomCrops, ShardCache, build_cache, span_notes
from transcribe.metrics import mean_metrics, transcription_metrics
from transcribe.onsets_frames.model import build_model, compile_model
from transcribe.transcriber import Transcriber

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
            estimate = transcriber.notes(probs)
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
          cache_workers: int = 1, seed: int = 0, initial_weights: Path | None = None) -> keras.Model:
    """Train (or, with `initial_weights`, fine-tune a trained transcriber) for `steps` in all."""
    run_dir = Path(run_dir)
    prepare_run(run_dir, config)
    cache_dir = Path(cache_dir or Path(tfrecord_dir) / "transcription-cache")
    log.info("caching training and validation examples under %s", cache_dir)
    train_caches = [ShardCache.open(p) for p in build_cache(tfrecord_dir, "train", cache_dir, config,
                                                            cache_workers)]
    valid_caches = [ShardCache.open(p) for p in build_cache(tfrecord_dir, "validation", cache_dir, config,
                                                            cache_workers)]

    model, initial_epoch = resume(run_dir, lambda: build_model(config), compile_model, seed, initial_weights)
    # The validation callback comes first: it adds val_* figures the others read.
    callbacks = [ValidationMetrics(valid_caches, validation_spans, seed),
                 *standard_callbacks(run_dir, Monitor("val_note_f1", "max"))]
    crops = RandomCrops(train_caches, config, steps_per_epoch, seed=seed + initial_epoch)
    epochs = max(1, steps // steps_per_epoch)
    if initial_epoch < epochs:
        model.fit(crops, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=2)
    return model


def train_from(settings) -> int:
    """`w2m2w train transcribe`: the named config with the settings' changes, trained."""
    from stages.cli import cores

    config = TranscriberConfig.named(settings.config)
    if settings.learning_rate:
        config = dataclasses.replace(config, learning_rate=settings.learning_rate)
    if settings.low_register_weight:
        config = dataclasses.replace(config, low_register_weight=settings.low_register_weight)
    train(settings.tfrecords, settings.run_dir, config, settings.steps, settings.steps_per_epoch,
          settings.validation_spans, settings.cache, cache_workers=cores(), seed=settings.seed,
          initial_weights=settings.initial_weights)
    return 0
