"""Train the pedal network on the transcriber's training cache (transcribe/dataset.py).

The log-mel frames are the transcriber's own cache; the pedal targets are read once more from
the TFRecords' sequences (their CC 64 events) into `pedal.npy` beside them. Validation: pedal
F1 on held-out spans, a press matched within 50 ms (`val_pedal_f1`, which picks best.keras).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import mir_eval
import numpy as np

from maestro import tfrecord
from maestro.examples import decode_transcription
from stages.contract import save_model_atomic
from stages.training.runs import Monitor, prepare_run, resume, standard_callbacks
from transcribe.config import TranscriberConfig
from transcribe.dataset import ShardCache, build_cache
from transcribe.pedal.pedal import (
    PedalConfig,
    PedalTranscriber,
    build_pedal_model,
    compile_pedal_model,
    decode_pedal,
    pedal_intervals,
    pedal_roll,
)

ONSET_TOLERANCE_S = 0.05


def cache_pedal(shard: Path, cache_folder: Path, frames_per_second: float) -> np.ndarray:
    """(N, 3) uint8 pedal targets aligned with a shard cache's rows (made once, then read)."""
    path, stamp_path = cache_folder / "pedal.npy", cache_folder / "pedal.json"
    stamp = {"source_bytes": shard.stat().st_size, "frames_per_second": frames_per_second}
    if path.exists() and stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp:
        return np.load(path, mmap_mode="r")
    spans = np.load(cache_folder / "spans.npy")
    rolls = []
    with shard.open("rb") as handle:
        for (first, length), data in zip(spans, tfrecord.read_records(handle)):
            sequence = decode_transcription(data).sequence
            rolls.append(pedal_roll(pedal_intervals(sequence), int(length), frames_per_second))
    roll = np.concatenate(rolls) if rolls else np.zeros((0, 3), np.uint8)
    partial = cache_folder / f".pedal.partial-{os.getpid()}.npy"
    np.save(partial, roll)
    os.replace(partial, path)
    stamp_path.write_text(json.dumps(stamp))
    return roll


def pedal_caches(tfrecord_dir: Path, split: str, cache_dir: Path, front_end: TranscriberConfig):
    shards = sorted(p for p in Path(tfrecord_dir, "transcription").glob(f"{split}.tfrecord-*")
                    if not p.name.endswith(".partial"))
    folders = build_cache(tfrecord_dir, split, cache_dir, front_end)
    return [(ShardCache.open(folder), cache_pedal(shard, folder, front_end.frames_per_second))
            for shard, folder in zip(shards, folders)]


class PedalCrops(keras.utils.PyDataset):
    """Batches of random crops of log-mel frames and pedal targets."""

    def __init__(self, caches, config: PedalConfig, steps: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.caches, self.config, self.steps = caches, config, steps
        self.index = [(c, int(first), int(length))
                      for c, (cache, _) in enumerate(caches) for first, length in cache.spans]
        lengths = np.array([length for _, _, length in self.index], np.float64)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        from transcribe.features import SILENCE

        crop = self.config.crop_frames
        xs, ys = [], []
        for choice in self.rng.choice(len(self.index), size=self.config.batch_size, p=self.weights):
            c, first, length = self.index[choice]
            cache, pedal = self.caches[c]
            offset = int(self.rng.integers(0, max(1, length - crop + 1)))
            size = min(crop, length - offset)
            x = np.full((crop, cache.features.shape[1]), SILENCE, np.float32)
            y = np.zeros((crop, 3), np.float32)
            x[:size] = cache.features[first + offset:first + offset + size]
            y[:size] = pedal[first + offset:first + offset + size]
            xs.append(x)
            ys.append(y)
        return np.stack(xs), np.stack(ys)


def pedal_metrics(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of pedal presses (within 50 ms), and with releases too
    (mir_eval's offset rule: within 50 ms or 20% of the press's length)."""
    if len(reference) == 0 and len(estimate) == 0:
        return {"pedal/precision": 1.0, "pedal/recall": 1.0, "pedal/f1": 1.0, "pedal-with-release/f1": 1.0,
                "pedal-frame/f1": 1.0}
    pitch = np.full(len(reference), 100.0)
    pitch_estimate = np.full(len(estimate), 100.0)
    ref, est = reference.reshape(-1, 2), estimate.reshape(-1, 2)
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref, pitch, est, pitch_estimate, onset_tolerance=ONSET_TOLERANCE_S, offset_ratio=None)
    _, _, f_release, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref, pitch, est, pitch_estimate, onset_tolerance=ONSET_TOLERANCE_S, offset_ratio=0.2)
    return {"pedal/precision": p, "pedal/recall": r, "pedal/f1": f, "pedal-with-release/f1": f_release,
            "pedal-frame/f1": frame_f1(reference, estimate)}


def frame_f1(reference: np.ndarray, estimate: np.ndarray, frames_per_second: float = 100.0) -> float:
    """F1 of the frames where the pedal is down (at 10 ms)."""
    end = max([0.0, *reference.reshape(-1)[1::2], *estimate.reshape(-1)[1::2]])
    frames = int(np.ceil(end * frames_per_second)) + 1
    ref, est = (pedal_roll(i, frames, frames_per_second)[:, 0].astype(bool) for i in (reference, estimate))
    both, either = int((ref & est).sum()), int(ref.sum()) + int(est.sum())
    return 1.0 if either == 0 else 2.0 * both / either


class PedalValidation(keras.callbacks.Callback):
    def __init__(self, caches, frames_per_second: float, spans: int = 32, seed: int = 0):
        super().__init__()
        everything = [(c, s) for c, (cache, _) in enumerate(caches) for s in range(len(cache.spans))]
        chosen = np.random.default_rng(seed).choice(len(everything), size=min(spans, len(everything)), replace=False)
        self.caches, self.spans, self.fps = caches, [everything[i] for i in sorted(chosen)], frames_per_second

    def on_epoch_end(self, epoch, logs=None):
        transcriber = PedalTranscriber(self.model, self.fps)
        scores = []
        for c, s in self.spans:
            cache, pedal = self.caches[c]
            first, length = cache.spans[s]
            mel = np.asarray(cache.features[first:first + length], np.float32)
            reference = _intervals_from_roll(np.asarray(pedal[first:first + length]), self.fps)
            estimate = decode_pedal(transcriber.probabilities(mel), self.model.config, self.fps)
            if len(reference):
                scores.append(pedal_metrics(reference, estimate))
        for key in ("pedal/f1", "pedal-with-release/f1", "pedal/precision", "pedal/recall", "pedal-frame/f1"):
            mean = float(np.mean([m[key] for m in scores])) if scores else 0.0
            logs["val_" + key.replace("/", "_").replace("-", "_")] = mean
        print(f"\nvalidation (epoch {epoch + 1}): pedal F1 {logs['val_pedal_f1']:.3f}, "
              f"with release {logs['val_pedal_with_release_f1']:.3f}")


def _intervals_from_roll(roll: np.ndarray, frames_per_second: float) -> np.ndarray:
    """Reference intervals back from a target roll (presses at the roll's edges)."""
    down = np.concatenate([[0], roll[:, 0].astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(down))
    return (np.stack([edges[::2], edges[1::2]], axis=1) / frames_per_second).reshape(-1, 2)


def train_pedal(tfrecord_dir: Path | str, run_dir: Path | str, config: PedalConfig, steps: int,
                front_end: TranscriberConfig | None = None, steps_per_epoch: int = 250,
                cache_dir: Path | str | None = None, seed: int = 0) -> keras.Model:
    """Train the pedal network for `steps` in all (a rerun resumes)."""
    front_end = front_end or TranscriberConfig.default()
    run_dir = Path(run_dir)
    prepare_run(run_dir, config)
    cache_dir = Path(cache_dir or Path(tfrecord_dir) / "transcription-cache")
    train_caches = pedal_caches(Path(tfrecord_dir), "train", cache_dir, front_end)
    valid_caches = pedal_caches(Path(tfrecord_dir), "validation", cache_dir, front_end)
    model, initial_epoch = resume(run_dir, lambda: build_pedal_model(config, front_end.mel_bins),
                                  compile_pedal_model, seed)
    callbacks = [PedalValidation(valid_caches, front_end.frames_per_second, seed=seed),
                 *standard_callbacks(run_dir, Monitor("val_pedal_f1", "max"))]
    crops = PedalCrops(train_caches, config, steps_per_epoch, seed=seed + initial_epoch)
    epochs = max(1, steps // steps_per_epoch)
    if initial_epoch < epochs:
        model.fit(crops, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=2)
    return model


# Decoding settings tried by tune_pedal: the down threshold, the press/release snap threshold and the
# shortest press or gap kept (frames).
TUNING_GRID = {"threshold": (0.4, 0.5, 0.6, 0.7), "event_threshold": (0.2, 0.4, 1.01), "min_frames": (3, 6, 10)}


def tune_pedal(tfrecord_dir: Path | str, checkpoint: Path | str, spans: int = 48, apply: bool = False,
               cache_dir: Path | str | None = None, seed: int = 0) -> dict:
    """Choose the pedal network's decoding settings on validation spans, ranked by press F1 +
    press-and-release F1; with `apply`, write them into the checkpoint's config (weights unchanged)."""
    import dataclasses
    import itertools

    front_end = TranscriberConfig.default()
    cache_dir = Path(cache_dir or Path(tfrecord_dir) / "transcription-cache")
    caches = pedal_caches(Path(tfrecord_dir), "validation", cache_dir, front_end)
    fps = front_end.frames_per_second
    transcriber = PedalTranscriber.load(checkpoint, fps)
    chosen_spans = PedalValidation(caches, fps, spans=spans, seed=seed).spans
    examples = []
    for c, s in chosen_spans:
        cache, pedal = caches[c]
        first, length = cache.spans[s]
        reference = _intervals_from_roll(np.asarray(pedal[first:first + length]), fps)
        if len(reference):
            examples.append((transcriber.probabilities(np.asarray(cache.features[first:first + length], np.float32)),
                             reference))
    results = []
    for values in itertools.product(*TUNING_GRID.values()):
        config = dataclasses.replace(transcriber.model.config, **dict(zip(TUNING_GRID, values)))
        scores = [pedal_metrics(reference, decode_pedal(probs, config, fps)) for probs, reference in examples]
        mean = {k: float(np.mean([m[k] for m in scores])) for k in scores[0]}
        results.append((mean["pedal/f1"] + mean["pedal-with-release/f1"], dict(zip(TUNING_GRID, values)), mean))
    _, settings, figures = max(results, key=lambda r: r[0])
    if apply:
        transcriber.model.config = dataclasses.replace(transcriber.model.config, **settings)
        save_model_atomic(transcriber.model, Path(checkpoint))
    return {**settings, "validation_spans": len(examples), **{k: round(v, 4) for k, v in figures.items()}}


def train_pedal_from(settings) -> int:
    """`w2m2w train pedal`."""
    train_pedal(settings.tfrecords, settings.run_dir, PedalConfig.named(settings.config), settings.steps,
                steps_per_epoch=settings.steps_per_epoch, cache_dir=settings.cache, seed=settings.seed)
    return 0


def tune_pedal_from(settings) -> int:
    """`w2m2w tune pedal`: prints the chosen settings as JSON."""
    chosen = tune_pedal(settings.tfrecords, settings.checkpoint, settings.spans, settings.apply, settings.cache)
    print(json.dumps(chosen, indent=2))
    return 0
