"""Train a composer (Music Transformer or a baseline) on MIDI: random augmented crops of whole
encoded pieces (compose.corpus), Adam with warm-up and cosine decay, validation NLL per event
after each epoch (best.keras is the lowest), TensorBoard logs, and runs that resume
(stages.training)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import keras

from compose.config import ComposerConfig
from compose.corpus import TokenCrops
from compose.data import encode_pieces
from compose.evaluate import nll_per_event
from compose.model import build_model, compile_model
from stages.midi import NoteSequence
from stages.training import Monitor, prepare_run, resume, standard_callbacks

log = logging.getLogger(__name__)


class ValidationNLL(keras.callbacks.Callback):
    """Adds `val_nll_per_event` (held-out pieces, non-overlapping chunks) to each epoch's logs."""

    def __init__(self, pieces: Sequence[NoteSequence]):
        super().__init__()
        self.pieces = list(pieces)

    def on_epoch_end(self, epoch, logs=None):
        result = nll_per_event(self.model, self.pieces)
        logs["val_nll_per_event"] = result["nll_per_event"]
        print(f"\nvalidation (epoch {epoch + 1}): {result['nll_per_event']:.4f} nats/event "
              f"over {result['events']} events of {result['pieces']} pieces")


def train(train_pieces: Sequence[NoteSequence], validation_pieces: Sequence[NoteSequence], run_dir: Path | str,
          config: ComposerConfig, steps: int, steps_per_epoch: int = 250, seed: int = 0,
          initial_weights: Path | None = None, keep_epochs: bool = False) -> keras.Model:
    """Train (or, with `initial_weights`, fine-tune a trained composer) for `steps` in all; with
    `keep_epochs`, every epoch's model stays in run_dir/epochs/ for averaging."""
    run_dir = Path(run_dir)
    prepare_run(run_dir, config)

    model, initial_epoch = resume(run_dir, lambda: build_model(config), compile_model, seed, initial_weights)
    monitor = Monitor("val_nll_per_event", "min")
    callbacks = [ValidationNLL(validation_pieces), *standard_callbacks(run_dir, monitor, keep_epochs)]
    crops = TokenCrops(encode_pieces(train_pieces, progress=True), config.batch_size, config.sequence_length,
                       steps_per_epoch, seed=seed + initial_epoch)
    epochs = max(1, steps // steps_per_epoch)
    if initial_epoch < epochs:
        model.fit(crops, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=2)
    return model
