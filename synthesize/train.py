"""Train the WaveNet on a rendered MAESTRO-layout dataset: random crops, teacher forcing,
validation loss each epoch, and the check that the conditioning matters: the validation loss
again with each crop's roll swapped for another crop's (`val_loss_shuffled_roll`)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from stages.contract import save_model_atomic
from stages.training.runs import Monitor, prepare_run, resume, standard_callbacks
from synthesize.adversarial import SaveGenerator, build_adversarial, compile_adversarial
from synthesize.config import SynthesizerConfig
from synthesize.data import RandomCrops, load_recordings
from synthesize.model import build_model, compile_model, transfer_weights
from synthesize.parallel import build_parallel, compile_parallel


class ShuffledRollLoss(keras.callbacks.Callback):
    """Validation loss with the conditioning (roll and excitation) of each batch rotated by one
    crop: if the model used the conditioning, this is clearly worse than val_loss."""

    def __init__(self, batches: RandomCrops):
        super().__init__()
        self.batches = batches

    def on_epoch_end(self, epoch, logs=None):
        losses = []
        for step in range(len(self.batches)):
            inputs, targets = self.batches[step]
            shuffled = {key: value if key in ("audio", "noise") else np.roll(value, 1, axis=0)
                        for key, value in inputs.items()}
            losses.append(float(self.model.evaluate(shuffled, targets, verbose=0)))
        logs["val_loss_shuffled_roll"] = float(np.mean(losses))
        print(f"\nvalidation (epoch {epoch + 1}): loss {logs.get('val_loss', float('nan')):.4f} with the true roll, "
              f"{logs['val_loss_shuffled_roll']:.4f} with shuffled rolls")


class SaveAveragedWeights(keras.callbacks.Callback):
    """With the optimizer's moving average of the weights on: after each epoch, its validation
    loss (`val_loss_averaged`) and averaged-epoch-N.keras, a model holding the averaged weights."""

    def __init__(self, run_dir: Path, batches: RandomCrops):
        super().__init__()
        self.run_dir, self.batches = run_dir, batches

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not optimizer.use_ema:
            return
        weights = self.model.trainable_variables
        current = [keras.ops.convert_to_numpy(w) for w in weights]
        optimizer.finalize_variable_values(weights)  # the averages into the weights, until restored below
        try:
            logs["val_loss_averaged"] = float(self.model.evaluate(self.batches, verbose=0))
            save_model_atomic(self.model, self.run_dir / f"averaged-epoch-{epoch + 1}.keras")
        finally:
            for weight, value in zip(weights, current):
                weight.assign(value)
        print(f"averaged weights (epoch {epoch + 1}): validation loss {logs['val_loss_averaged']:.4f}")


def train(root: Path | str, run_dir: Path | str, config: SynthesizerConfig, steps: int, steps_per_epoch: int = 250,
          validation_batches: int = 8, seed: int = 0, initial_weights: Path | None = None) -> keras.Model:
    """Train (or, with `initial_weights`, go on from a trained WaveNet's weights with this
    config's optimizer settings, also one with the older transposed upsampling) for `steps` in all."""
    run_dir = Path(run_dir)
    prepare_run(run_dir, config)
    margin = sum(config.context_dilations)

    def recordings(split):
        return load_recordings(root, split, config.sample_rate_hz, config.render_grid_samples)

    training = RandomCrops(recordings("train"), config, steps_per_epoch, seed=seed, margin_frames=margin)
    validation = RandomCrops(recordings("validation"), config, validation_batches, seed=seed, margin_frames=margin,
                             fixed=True)

    adversarial = config.architecture == "parallel" and config.discriminator_layers > 0
    if adversarial:
        model, initial_epoch = resume(run_dir, lambda: build_adversarial(config), compile_adversarial, seed)
        if initial_weights is not None and initial_epoch == 0:  # a generator's weights; the discriminator starts anew
            start = keras.saving.load_model(initial_weights, compile=False)
            model.generator.set_weights(getattr(start, "generator", start).get_weights())
    elif config.architecture == "parallel":
        model, initial_epoch = resume(run_dir, lambda: build_parallel(config), compile_parallel, seed)
        if initial_weights is not None and initial_epoch == 0:
            model.set_weights(keras.saving.load_model(initial_weights, compile=False).get_weights())
    else:
        model, initial_epoch = resume(run_dir, lambda: build_model(config), compile_model, seed)
        if initial_weights is not None and initial_epoch == 0:
            transfer_weights(keras.saving.load_model(initial_weights, compile=False), model)
    monitor = Monitor("val_loss", "min")
    callbacks = [ShuffledRollLoss(validation), SaveAveragedWeights(run_dir, validation),
                 *standard_callbacks(run_dir, monitor, save_best=not adversarial)]
    if adversarial:  # best.keras holds the generator alone, as without the discriminator
        callbacks.insert(0, SaveGenerator(run_dir, monitor.best_so_far(run_dir)))
    epochs = max(1, steps // steps_per_epoch)
    if initial_epoch < epochs:
        model.fit(training, validation_data=validation, epochs=epochs, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=2)
    return model


def train_from(settings) -> int:
    """`w2m2w train synthesize`."""
    train(settings.root, settings.run_dir, settings.training_config(), settings.steps, settings.steps_per_epoch,
          seed=settings.seed, initial_weights=settings.initial_weights)
    return 0
