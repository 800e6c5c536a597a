"""Training pairs for the WaveNet: random crops of a MAESTRO-layout dataset's recordings with the
conditioning roll of the same span (plus context frames each side) and, when the config has
harmonics, the harmonic excitation of the same samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import soundfile

from maestro.metadata import Dataset
from stages.io.midi import apply_sustain, notes_from_sequence, read_note_sequence
from synthesize.conditioning import conditioning_roll, snap_to_render_grid
from synthesize.config import SynthesizerConfig
from synthesize.excitation import config_excitation
from synthesize.mixture import mulaw_decode, mulaw_encode


@dataclasses.dataclass
class Recording:
    audio_path: Path
    notes: np.ndarray  # sustain applied
    samples: int


def load_recordings(root: Path | str, split: str, sample_rate_hz: int, render_grid_samples: int = 0) -> list[Recording]:
    """The split's recordings with their notes (sustain applied, snapped to the renderer's grid)."""
    dataset = Dataset.open(root)
    recordings = []
    for record in dataset.select(splits=[split]):
        info = soundfile.info(str(dataset.audio_path(record)))
        if info.samplerate != sample_rate_hz or info.channels != 1:
            raise ValueError(f"{record.audio_filename}: the synthesizer trains on {sample_rate_hz} Hz mono renders")
        notes = notes_from_sequence(apply_sustain(read_note_sequence(dataset.midi_path(record))))
        notes = snap_to_render_grid(notes, render_grid_samples, sample_rate_hz)
        recordings.append(Recording(dataset.audio_path(record), notes, info.frames))
    return recordings


def crop_inputs(recording: Recording, start: int, length: int, config: SynthesizerConfig,
                margin_frames: int, rng: np.random.Generator | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({"audio": previous samples (length,), "roll": (length / spf + 2 margin, 176)[, "excitation":
    (length, 2H)]}, targets (length,)) for samples [start, start + length); start and length are
    multiples of samples_per_frame. With `rng`, the audio gets the config's dither and the past samples
    its input noise. A parallel config's inputs hold "noise" (length,) instead of "audio", and its
    targets are the samples themselves."""
    if config.architecture == "parallel":
        return parallel_crop_inputs(recording, start, length, config, margin_frames, rng)
    with soundfile.SoundFile(recording.audio_path) as sound:
        first = max(start - 1, 0)
        sound.seek(first)
        audio = sound.read(start + length - first, dtype="float32")
    if start == 0:
        audio = np.concatenate([[0.0], audio]).astype(np.float32)
    audio = np.pad(audio, (0, length + 1 - len(audio)))
    if rng is not None and config.dither_lsb > 0:
        audio = dither(audio, config.dither_lsb, rng)
    previous, targets = audio[:-1], audio[1:]
    if rng is not None and config.input_noise_lsb > 0:
        previous = (previous + rng.normal(0.0, config.input_noise_lsb / 32768, previous.shape)).astype(np.float32)
    if config.output == "mulaw":  # the network hears what it predicts: 8-bit mu-law
        previous = np.asarray(mulaw_decode(mulaw_encode(previous)), np.float32)
        targets = mulaw_encode(targets)
    return {"audio": previous, **crop_conditioning(recording.notes, start, length, config, margin_frames)}, targets


def crop_conditioning(notes: np.ndarray, start: int, length: int, config: SynthesizerConfig,
                      margin_frames: int) -> dict[str, np.ndarray]:
    """{"roll": (length / spf + 2 margin, 176)[, "excitation": (length, E)]} for samples
    [start, start + length) of the notes' timeline."""
    offset_s = (start / config.samples_per_frame - margin_frames) / config.roll_rate_hz
    shifted = notes.copy()
    shifted["onset_s"] -= offset_s
    shifted["offset_s"] -= offset_s
    inputs = {"roll": conditioning_roll(shifted, length // config.samples_per_frame + 2 * margin_frames,
                                        config.roll_rate_hz)}
    if config.harmonics:
        inputs["excitation"] = config_excitation(notes, start, length, config)
    return inputs


def parallel_crop_inputs(recording: Recording, start: int, length: int, config: SynthesizerConfig,
                         margin_frames: int, rng: np.random.Generator | None = None):
    """({"noise": (length,), "roll", ["excitation"]}, audio (length,)) for the parallel generator."""
    with soundfile.SoundFile(recording.audio_path) as sound:
        sound.seek(start)
        audio = sound.read(length, dtype="float32")
    audio = np.pad(audio, (0, length - len(audio)))
    rng = rng if rng is not None else np.random.default_rng(start)
    noise = (config.noise_std * rng.standard_normal(length)).astype(np.float32)
    return {"noise": noise, **crop_conditioning(recording.notes, start, length, config, margin_frames)}, audio


def dither(audio: np.ndarray, lsb: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of `lsb` 16-bit steps, then rounded back to the 16-bit grid."""
    noisy = audio + rng.normal(0.0, lsb / 32768, audio.shape)
    return (np.round(np.clip(noisy, -1.0, 32767 / 32768) * 32768) / 32768).astype(np.float32)


class RandomCrops(keras.utils.PyDataset):
    """Batches ({"audio", "roll"}, targets) of random crops, recordings drawn by length.
    `fixed=True` gives the same batches every epoch (for validation)."""

    def __init__(self, recordings: list[Recording], config: SynthesizerConfig, steps: int, seed: int = 0,
                 margin_frames: int = 0, fixed: bool = False, **kwargs):
        super().__init__(**kwargs)
        spf = config.samples_per_frame
        self.recordings = [r for r in recordings if r.samples > config.crop_samples + spf]
        if not self.recordings:
            raise ValueError("no recording is longer than one training crop")
        self.config, self.steps, self.margin = config, steps, margin_frames
        lengths = np.array([r.samples for r in self.recordings], np.float64)
        self.weights = lengths / lengths.sum()
        self.seed, self.fixed = seed, fixed
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        rng = np.random.default_rng([self.seed, step]) if self.fixed else self.rng
        spf, length = self.config.samples_per_frame, self.config.crop_samples
        crops = []
        for index in rng.choice(len(self.recordings), size=self.config.batch_size, p=self.weights):
            recording = self.recordings[index]
            start = spf * int(rng.integers(0, (recording.samples - length) // spf))
            crops.append(crop_inputs(recording, start, length, self.config, self.margin, rng))
        inputs = {key: np.stack([crop[0][key] for crop in crops]) for key in crops[0][0]}
        return inputs, np.stack([crop[1] for crop in crops])
