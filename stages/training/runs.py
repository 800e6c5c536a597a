"""Training runs that survive interruption, shared by every model.

RUN_DIR/config.json  the model config (a rerun with another config is refused)
RUN_DIR/last.keras   model and optimizer after the latest epoch  } a rerun resumes from here,
RUN_DIR/state.json   that epoch and the best monitored value     } killed or asked for more
RUN_DIR/best.keras   the model with the best monitored value (the one to ship)
RUN_DIR/history.csv  every epoch's figures, and history.png, their curves
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from pathlib import Path
from typing import Callable

import keras

from stages.contract import remove_stale_partials, save_model_atomic, write_bytes_atomic, write_text_atomic

log = logging.getLogger(__name__)


def prepare_run(run_dir: Path, config) -> None:
    """Create the run folder and pin its config. Fields the pinned config lacks were added to the
    code after the run began (e.g. an inference setting), so they do not stop it resuming."""
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(run_dir)  # a run killed while saving left a temporary behind
    path = run_dir / "config.json"
    wanted = json.loads(json.dumps(dataclasses.asdict(config)))
    if path.exists():
        pinned = json.loads(path.read_text())
        if any(pinned.get(key, value) != value for key, value in wanted.items()) or set(pinned) - set(wanted):
            raise ValueError(f"{run_dir} was trained with another config; use a new run folder")
    path.write_text(json.dumps(wanted, indent=2) + "\n")


def resume(run_dir: Path, build: Callable[[], keras.Model], compile_model: Callable[[keras.Model], keras.Model],
           seed: int, initial_weights: Path | None = None) -> tuple[keras.Model, int]:
    """The model to train and the epoch to start at: last.keras's when the run has one; else a
    new model (this run's config: its own learning rate and settings) compiled, starting from
    `initial_weights` (a trained model of the same config) when given, at random otherwise."""
    state_path, last = run_dir / "state.json", run_dir / "last.keras"
    if state_path.exists() and last.exists():
        epoch = json.loads(state_path.read_text())["epoch"]
        log.info("resuming %s at epoch %d", run_dir, epoch + 1)
        return keras.saving.load_model(last), epoch
    keras.utils.set_random_seed(seed)
    model = build()
    if initial_weights is not None:
        model.set_weights(keras.saving.load_model(initial_weights, compile=False).get_weights())
    return compile_model(model), 0


class Monitor:
    """Which logged value picks best.keras, and in which direction."""

    def __init__(self, key: str, mode: str):
        self.key, self.mode = key, mode

    def better(self, a: float | None, b: float | None) -> float | None:
        values = [v for v in (a, b) if v is not None]
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)

    def best_so_far(self, run_dir: Path) -> float | None:
        path = run_dir / "state.json"
        return json.loads(path.read_text()).get(self.key) if path.exists() else None

    def checkpoint(self, run_dir: Path) -> keras.callbacks.ModelCheckpoint:
        return keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor=self.key, mode=self.mode,
                                               save_best_only=True,
                                               initial_value_threshold=self.best_so_far(run_dir))


class SaveState(keras.callbacks.Callback):
    """After each epoch: last.keras (weights and optimizer) and state.json, both atomically; with
    `keep_epochs`, a copy of each epoch's model in epochs/ too (for scripts/average_weights.py)."""

    def __init__(self, run_dir: Path, monitor: Monitor, keep_epochs: bool = False):
        super().__init__()
        self.run_dir, self.monitor, self.keep_epochs = run_dir, monitor, keep_epochs

    def on_epoch_end(self, epoch, logs=None):
        last = self.run_dir / "last.keras"
        save_model_atomic(self.model, last)
        if self.keep_epochs:
            kept = self.run_dir / "epochs" / f"epoch-{epoch + 1:03d}.keras"
            kept.parent.mkdir(exist_ok=True)
            write_bytes_atomic(kept, last.read_bytes())
        best = self.monitor.better(self.monitor.best_so_far(self.run_dir), (logs or {}).get(self.monitor.key))
        state = {"epoch": epoch + 1, self.monitor.key: best}
        write_text_atomic(self.run_dir / "state.json", json.dumps(state) + "\n")


class PlotHistory(keras.callbacks.Callback):
    """history.png beside history.csv after each epoch (the CSV logger must run first)."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        from stages.io.plots import plot_history

        try:
            plot_history(self.run_dir / "history.csv", self.run_dir / "history.png")
        except Exception as error:  # a picture is never worth a training run
            log.warning("could not plot %s: %s", self.run_dir / "history.csv", error)


def standard_callbacks(run_dir: Path, monitor: Monitor, keep_epochs: bool = False,
                       save_best: bool = True) -> list[keras.callbacks.Callback]:
    """best.keras (unless the trainer saves its own: `save_best` False), last.keras + state.json
    (and epochs/ with `keep_epochs`), history.csv (and its plot history.png), TensorBoard logs."""
    callbacks = [monitor.checkpoint(run_dir)] if save_best else []
    callbacks += [SaveState(run_dir, monitor, keep_epochs),
                 keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True), PlotHistory(run_dir)]
    if importlib.util.find_spec("tensorboard"):  # the writer needs it; absent on some GPU hosts
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq=50))
    else:
        log.warning("tensorboard not installed: no TensorBoard logs")
    return callbacks
