"""Train a composer (Music Transformer or a baseline): random augmented crops of whole encoded
pieces (compose.corpus), Adam with warm-up and cosine decay, validation NLL per event after each
epoch (best.keras is the lowest), TensorBoard logs, and runs that resume (stages.training.runs).

The budget is optimizer steps (the learning rate follows a cosine over them, step by step) or
wall-clock minutes (the rate is set at each epoch's start from the share of the time spent, and
the run stops where one more epoch would overrun; the seconds spent survive a resumption in
RUN_DIR/budget.json). With `average_from`, the mean of the weights at the end of every epoch
after that share of the budget is kept in RUN_DIR/mean.keras (weights only).

Nothing here needs note-seq or TensorFlow when the pieces come as tokens: an accelerator machine
trains under JAX from a token file (compose.corpus.TokenFile).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from compose import conditioning
from compose.config import ComposerConfig
from compose.corpus import TokenCrops
from compose.evaluate import token_nll_per_event
from compose.model import build_model, compile_model
from compose.vocabulary import VOCAB_SIZE
from compose.weights import save_weights_only
from stages.contract import write_text_atomic
from stages.training.runs import Monitor, prepare_run, resume, standard_callbacks

log = logging.getLogger(__name__)


class Budget:
    """The share of a run's budget spent: optimizer steps, or seconds (kept across resumptions)."""

    def __init__(self, run_dir: Path, steps: int | None = None, minutes: float | None = None):
        if (steps is None) == (minutes is None):
            raise ValueError("give the budget in steps or in minutes")
        self.path, self.steps, self.seconds = run_dir / "budget.json", steps, minutes and minutes * 60
        self.before = json.loads(self.path.read_text())["seconds"] if self.path.exists() else 0.0
        self.start()

    def start(self) -> None:
        """The clock runs from here (training, not its preparation)."""
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return self.before + time.monotonic() - self.started

    def spent(self, model: keras.Model) -> float:
        if self.steps:
            return int(model.optimizer.iterations) / self.steps
        return self.elapsed() / self.seconds

    def record(self) -> None:
        write_text_atomic(self.path, json.dumps({"seconds": round(self.elapsed(), 1)}) + "\n")


class TimeBudget(keras.callbacks.Callback):
    """Minutes budgets: each epoch's learning rate (linear warm-up over the first epochs, then a
    cosine to a tenth of the peak over the time), and the stop."""

    def __init__(self, budget: Budget, peak: float, warmup_epochs: int):
        super().__init__()
        self.budget, self.peak, self.warmup_epochs = budget, peak, warmup_epochs
        self.epoch_started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()
        if epoch < self.warmup_epochs:
            rate = self.peak * (epoch + 1) / self.warmup_epochs
        else:
            share = min(self.budget.spent(self.model), 1.0)
            rate = self.peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * share)))
        self.model.optimizer.learning_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        self.budget.record()
        epoch_share = (time.monotonic() - self.epoch_started) / self.budget.seconds
        if self.budget.spent(self.model) + epoch_share >= 1.0:  # one more epoch would overrun
            self.model.stop_training = True


class ValidationNLL(keras.callbacks.Callback):
    """Adds `val_nll_per_event` (held-out pieces as tokens, non-overlapping chunks, the raw
    probability) to each epoch's logs, or with `prefixes` (each piece's conditioning tokens, leading
    its chunks) `val_nll_per_event_labelled`."""

    def __init__(self, pieces: Sequence[np.ndarray], length: int | None = None, batch_size: int | None = None,
                 prefixes: Sequence[np.ndarray] | None = None):
        super().__init__()
        self.pieces, self.length, self.batch_size, self.prefixes = list(pieces), length, batch_size, prefixes
        self.key = "val_nll_per_event" if prefixes is None else "val_nll_per_event_labelled"

    def on_epoch_end(self, epoch, logs=None):
        result = token_nll_per_event(self.model, self.pieces, self.length, self.batch_size, in_grammar=False,
                                     prefixes=self.prefixes)
        logs[self.key] = result["nll_per_event"]
        labelled = "" if self.prefixes is None else ", each piece's composer leading its chunks"
        print(f"\nvalidation (epoch {epoch + 1}): {result['nll_per_event']:.4f} nats/event "
              f"over {result['events']} events of {len(self.pieces)} pieces{labelled}", flush=True)


class TrainLabelsOnly(keras.callbacks.Callback):
    """Prompt tuning (Lester et al. 2021): after every step every weight is put back as it was
    except the conditioning tokens' embeddings. The model then predicts music without labels exactly
    as before (its validation NLL cannot get worse), and the labels learn to steer the frozen
    model. On a CPU, where a whole fine-tune only adds noise to weights trained on an accelerator."""

    def on_train_begin(self, logs=None):
        self.kept = [(variable, variable.numpy()) for variable in self.model.trainable_variables]
        self.embeddings = self.model.embedding.embeddings

    def on_train_batch_end(self, batch, logs=None):
        if keras.backend.backend() == "jax":  # JAX's trainer holds the weights apart until asked for them
            self.model.jax_state_sync()
        for variable, value in self.kept:
            if variable is self.embeddings:
                value = np.concatenate([value[:VOCAB_SIZE], variable.numpy()[VOCAB_SIZE:]])
            variable.assign(value)


class AverageWeights(keras.callbacks.Callback):
    """The running mean of the weights at the end of each epoch once `start` of the budget is
    spent, saved as RUN_DIR/mean.keras with its count in mean.json (a resumed run goes on with it)."""

    def __init__(self, run_dir: Path, budget: Budget, start: float, float16: bool = False):
        super().__init__()
        self.run_dir, self.budget, self.start, self.float16 = run_dir, budget, start, float16
        counted = run_dir / "mean.json"
        self.count = json.loads(counted.read_text())["epochs"] if counted.exists() else 0

    def on_epoch_end(self, epoch, logs=None):
        if self.budget.spent(self.model) < self.start:
            return
        weights = self.model.get_weights()
        if self.count:
            mean = keras.saving.load_model(self.run_dir / "mean.keras", compile=False).get_weights()
            weights = [m + (w - m) / (self.count + 1) if np.issubdtype(w.dtype, np.floating) else w
                       for m, w in zip(mean, weights)]
        save_weights_only(self.model, self.run_dir / "mean.keras", weights, float16=self.float16)
        self.count += 1
        counted = json.dumps({"epochs": self.count, "last_epoch": epoch + 1})
        write_text_atomic(self.run_dir / "mean.json", counted + "\n")


def as_tokens(pieces: Sequence) -> list[np.ndarray]:
    """Pieces given as tokens stay; NoteSequences are encoded (this needs note-seq)."""
    if pieces and not isinstance(pieces[0], np.ndarray):
        from compose.data import encode_pieces

        return encode_pieces(pieces, progress=True)
    return list(pieces)


def train(train_pieces: Sequence, validation_pieces: Sequence, run_dir: Path | str, config: ComposerConfig,
          steps: int | None = None, steps_per_epoch: int = 250, seed: int = 0, initial_weights: Path | None = None,
          keep_epochs: bool = False, minutes: float | None = None, composers: Sequence[int | None] | None = None,
          label_dropout: float = 0.25, average_from: float | None = None, validation_length: int | None = None,
          validation_batch_size: int | None = None, float16: bool = False, labels_only: bool = False,
          validation_composers: Sequence[int | None] | None = None) -> keras.Model:
    """Train (or, with `initial_weights`, a trained composer of this config, go on training) for
    `steps` or `minutes` in all; pieces are tokens (or NoteSequences, encoded here). A model with
    the conditioning tokens trains with each piece's composer (`composers`: indices in COMPOSERS,
    None unknown) and its crops' note densities, each dropped at the rate `label_dropout`. With
    `keep_epochs`, every epoch's model stays in run_dir/epochs/; with `float16`, the models
    written at the end (best-float16.keras, mean.keras) hold float16 weights. With `labels_only`
    (a conditioned model) only the conditioning tokens' embeddings train (TrainLabelsOnly), and
    the run is judged on validation with each piece's composer (`validation_composers`) leading."""
    run_dir = Path(run_dir)
    prepare_run(run_dir, config)
    budget = Budget(run_dir, steps, minutes)

    def compiled(model):
        # Minutes: a plain rate that TimeBudget sets each epoch; steps: the config's schedule.
        return compile_model(model, learning_rate=config.learning_rate if minutes else None)

    model, initial_epoch = resume(run_dir, lambda: build_model(config), compiled, seed, initial_weights)
    prefixes = None
    if labels_only:
        if not config.conditioned or validation_composers is None:
            raise ValueError("training the labels alone needs a conditioned model and the validation pieces' "
                             "composers")
        prefixes = [conditioning.prefix(composer) for composer in validation_composers]
    validation = ValidationNLL(as_tokens(validation_pieces), validation_length, validation_batch_size, prefixes)
    monitor = Monitor(validation.key, "min")
    callbacks = [validation] + ([TrainLabelsOnly()] if labels_only else [])
    if minutes:
        warmup_epochs = max(1, round(config.warmup_steps / steps_per_epoch))
        callbacks.append(TimeBudget(budget, config.learning_rate, warmup_epochs))
    if average_from is not None:
        callbacks.append(AverageWeights(run_dir, budget, average_from, float16))
    callbacks += [c for c in standard_callbacks(run_dir, monitor, keep_epochs)
                  if _can_plot() or type(c).__name__ != "PlotHistory"]  # its plots need note-seq (stages.io.plots)
    crops = TokenCrops(as_tokens(train_pieces), config.batch_size, config.sequence_length, steps_per_epoch,
                       seed=seed + initial_epoch, conditioning=config.conditioned, composers=composers,
                       label_dropout=label_dropout)
    epochs = max(1, steps // steps_per_epoch) if steps else 1_000_000
    print(f"{keras.backend.backend()} backend, {model.count_params():,} parameters, {config.num_layers} blocks of "
          f"width {config.model_dim}; {len(crops.pieces)} pieces, {budget.spent(model):.0%} of the budget spent",
          flush=True)
    budget.start()
    if initial_epoch < epochs and budget.spent(model) < 1.0:
        model.fit(crops, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=2)
    if float16 and (run_dir / "best.keras").exists():
        best = keras.saving.load_model(run_dir / "best.keras", compile=False)
        save_weights_only(best, run_dir / "best-float16.keras", float16=True)
    return model


def _can_plot() -> bool:
    try:
        import stages.io.plots  # noqa: F401
    except ImportError:
        return False
    return True


def train_from(settings) -> int:
    """`w2m2w train compose`: the named config (or the --from model's) with the settings' changes,
    trained on the settings' source."""
    import dataclasses

    from compose.config import TRAINING_FIELDS
    from compose.corpus import even_spread

    s = settings
    if s.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    config = ComposerConfig.named(s.config, s.architecture)
    initial = s.initial_weights
    if initial:
        from compose.growth import starting_point

        initial = starting_point(initial, s.run_dir, s.grow_layers, s.widen, s.conditioning, s.seed)
        trained = keras.saving.load_model(initial, compile=False).config
        config = dataclasses.replace(trained, **{field: getattr(config, field) for field in TRAINING_FIELDS})
    elif s.grow_layers or s.widen:
        raise ValueError("--grow-layers and --widen change a trained composer: give it with --from")
    elif s.conditioning and not config.conditioned:
        from compose.vocabulary import CONDITIONED_VOCAB_SIZE

        config = dataclasses.replace(config, vocab_size=CONDITIONED_VOCAB_SIZE)
    steps = s.steps if s.minutes is None else None
    steps = steps or (20_000 if s.minutes is None else None)
    changes = dict(learning_rate=s.learning_rate or config.learning_rate,
                   sequence_length=s.sequence_length or config.sequence_length,
                   batch_size=s.batch_size or config.batch_size)
    if steps:
        changes["decay_steps"] = steps
    if s.attention_span is not None:
        changes["attention_span"] = s.attention_span
    config = dataclasses.replace(config, **changes)

    if s.labels_only and not (s.conditioning and s.initial_weights):
        raise ValueError("--labels-only trains the labels of a trained composer: give --conditioning and --from")
    train_pieces, validation, composers, validation_composers = training_data(s.source, s.split_csv, s.validation)
    train(train_pieces, even_spread(validation, s.validation_pieces), s.run_dir, config, steps,
          s.steps_per_epoch, s.seed, initial_weights=initial, keep_epochs=s.keep_epochs, minutes=s.minutes,
          composers=composers, label_dropout=s.label_dropout, average_from=s.average_from,
          validation_batch_size=s.validation_batch_size, float16=s.float16, labels_only=s.labels_only,
          validation_composers=even_spread(validation_composers, s.validation_pieces))
    return 0


def training_data(source: Path, split_csv: Path | None = None, validation: Path | None = None):
    """(training pieces as tokens, validation pieces as tokens, each one's composer index: training's,
    validation's) from a token file (validation: another, else its last tenth) or MIDI."""
    import dataclasses

    from compose.conditioning import composer_index
    from compose.settings import is_token_file

    if is_token_file(source):
        from compose.corpus import TokenFile

        corpus = TokenFile.load(source).unstretched()
        if validation:
            held_out = TokenFile.load(validation).unstretched()
        else:  # the last tenth of the pieces
            held = max(1, len(corpus.pieces) // 10)
            held_out = dataclasses.replace(corpus, pieces=corpus.pieces[-held:], composers=corpus.composers[-held:])
            corpus = dataclasses.replace(corpus, pieces=corpus.pieces[:-held] or held_out.pieces,
                                         composers=corpus.composers[:-held] or held_out.composers)
        return (corpus.pieces, held_out.pieces, [composer_index(c) for c in corpus.composers],
                [composer_index(c) for c in held_out.composers])

    from compose.data import encode_pieces, load_labelled_pieces

    pieces = {split: load_labelled_pieces(source, split, split_csv) for split in ("train", "validation")}
    (train_pieces, composers), (validation, validation_composers) = pieces["train"], pieces["validation"]
    if split_csv is None and not (source / "composition").is_dir():  # one folder: hold out its last tenth
        held = max(1, len(train_pieces) // 10)
        validation, validation_composers = train_pieces[-held:], composers[-held:]
        train_pieces, composers = (train_pieces[:-held], composers[:-held]) if len(train_pieces) > held else (
            validation, validation_composers)
    with_notes = [i for i, p in enumerate(train_pieces) if p.notes]
    validation_with_notes = [i for i, p in enumerate(validation) if p.notes]
    return (encode_pieces([train_pieces[i] for i in with_notes], progress=True),
            encode_pieces([validation[i] for i in validation_with_notes]),
            [composer_index(composers[i]) for i in with_notes],
            [composer_index(validation_composers[i]) for i in validation_with_notes])
