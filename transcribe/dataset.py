"""Training data for the transcriber, from the Beam TFRecords (`w2m2w maestro preprocess`).

Decoding WAV and computing log-mels on every step would cost more CPU than the model, so each
TFRecord shard is turned once into a cache folder of arrays (float16 log-mels; uint8 rolls),
read back memory-mapped, and random crops are drawn from it:

  CACHE/<shard file name>/features.npy  (N, mel_bins) float16
                         /frames.npy onsets.npy offsets.npy velocities.npy  (N, 88) uint8
                         /spans.npy   (S, 2) int64: first row and length of each example
                         /notes.npy   reference notes of every span (NOTE_DTYPE + span index)
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from maestro import tfrecord
from maestro.examples import decode_transcription
from stages.io.midi import NOTE_DTYPE, notes_from_sequence
from stages.io.pianoroll import piano_roll
from transcribe.config import TranscriberConfig
from transcribe.features import SILENCE, log_mel, num_frames

ROLLS = ("frames", "onsets", "offsets", "velocities")
SPAN_NOTE_DTYPE = np.dtype(NOTE_DTYPE.descr + [("span", "i4")])


def _front_end(config: TranscriberConfig) -> dict:
    return {k: getattr(config, k)
            for k in ("sample_rate_hz", "hop_length", "fft_size", "mel_bins", "fmin_hz", "fmax_hz")}


def cache_shard(shard: Path, cache_root: Path, config: TranscriberConfig) -> Path:
    """Turn one TFRecord shard into a cache folder (skipped when it is already there)."""
    target = cache_root / shard.name
    stamp = {"source_bytes": shard.stat().st_size, "front_end": _front_end(config)}
    if (target / "meta.json").exists() and json.loads((target / "meta.json").read_text()) == stamp:
        return target
    features, rolls, spans, notes = [], {name: [] for name in ROLLS}, [], []
    row = 0
    with shard.open("rb") as handle:
        for data in tfrecord.read_records(handle):
            example = decode_transcription(data)
            mel = log_mel(example.audio, config)
            count = num_frames(len(example.audio), config)
            span_notes = notes_from_sequence(example.sequence)
            labels = piano_roll(span_notes, count, config.frames_per_second)
            features.append(mel.astype(np.float16))
            for name in ROLLS:
                rolls[name].append(getattr(labels, name))
            kept = span_notes[span_notes["onset_s"] >= 0]  # notes begun earlier are not this span's
            with_span = np.empty(len(kept), SPAN_NOTE_DTYPE)
            for field in NOTE_DTYPE.names:
                with_span[field] = kept[field]
            with_span["span"] = len(spans)
            notes.append(with_span)
            spans.append((row, count))
            row += count
    partial = cache_root / f".{shard.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    np.save(partial / "features.npy",
            np.concatenate(features) if features else np.zeros((0, config.mel_bins), np.float16))
    for name in ROLLS:
        np.save(partial / f"{name}.npy", np.concatenate(rolls[name]) if spans else np.zeros((0, 88), np.uint8))
    np.save(partial / "spans.npy", np.array(spans, dtype=np.int64).reshape(-1, 2))
    np.save(partial / "notes.npy", np.concatenate(notes) if notes else np.zeros(0, SPAN_NOTE_DTYPE))
    (partial / "meta.json").write_text(json.dumps(stamp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


def _cache_one(args):
    return cache_shard(*args)


def build_cache(tfrecord_dir: Path | str, split: str, cache_root: Path | str, config: TranscriberConfig,
                workers: int = 1) -> list[Path]:
    """Cache every `<split>.tfrecord-*` shard of a preprocess output's transcription folder."""
    shards = sorted(path for path in Path(tfrecord_dir, "transcription").glob(f"{split}.tfrecord-*")
                    if not path.name.endswith(".partial"))  # a shard still being written
    if not shards:
        raise FileNotFoundError(f"no {split}.tfrecord-* in {Path(tfrecord_dir, 'transcription')}")
    cache_root = Path(cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    jobs = [(shard, cache_root, config) for shard in shards]
    if workers <= 1:
        return [cache_shard(*job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_cache_one, jobs, chunksize=1)


@dataclasses.dataclass
class ShardCache:
    features: np.ndarray
    rolls: dict[str, np.ndarray]
    spans: np.ndarray
    notes: np.ndarray

    @classmethod
    def open(cls, folder: Path) -> "ShardCache":
        def load(name):
            return np.load(folder / f"{name}.npy", mmap_mode="r")

        return cls(load("features"), {name: load(name) for name in ROLLS}, np.load(folder / "spans.npy"),
                   np.load(folder / "notes.npy"))


def example_arrays(cache: ShardCache, first: int, length: int, crop: int) -> tuple[np.ndarray, dict]:
    """Features and targets of rows [first, first + length), padded with silence to `crop`."""
    x = np.full((crop, cache.features.shape[1]), SILENCE, np.float32)
    x[:length] = cache.features[first:first + length]
    y = {}
    for name in ROLLS:
        roll = np.zeros((crop, 88), np.float32)
        roll[:length] = cache.rolls[name][first:first + length]
        y[name] = roll
    # Velocity target: MIDI velocity / 127 at labelled onsets, -1 (masked) elsewhere.
    y["velocities"] = np.where(y["onsets"] > 0, y["velocities"] / 127.0, -1.0).astype(np.float32)
    return x, y


class RandomCrops(keras.utils.PyDataset):
    """Batches of random crops, spans drawn in proportion to their length."""

    def __init__(self, caches: Sequence[ShardCache], config: TranscriberConfig, steps: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.caches, self.config, self.steps = list(caches), config, steps
        self.index = [(c, int(first), int(length)) for c, cache in enumerate(self.caches)
                      for first, length in cache.spans]
        lengths = np.array([length for _, _, length in self.index], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        crop, xs, ys = self.config.crop_frames, [], {name: [] for name in ROLLS}
        for choice in self.rng.choice(len(self.index), size=self.config.batch_size, p=self.weights):
            c, first, length = self.index[choice]
            offset = int(self.rng.integers(0, max(1, length - crop + 1)))
            x, y = example_arrays(self.caches[c], first + offset, min(crop, length - offset), crop)
            xs.append(x)
            for name in ROLLS:
                ys[name].append(y[name])
        return np.stack(xs), {name: np.stack(v) for name, v in ys.items()}


def span_notes(cache: ShardCache, span: int) -> np.ndarray:
    """The reference notes (sustain applied) that begin inside one span, as a note array."""
    chosen = cache.notes[cache.notes["span"] == span]
    notes = np.empty(len(chosen), NOTE_DTYPE)
    for field in NOTE_DTYPE.names:
        notes[field] = chosen[field]
    return notes
