"""Fast autoregressive generation (Paine et al. 2016) of whole pieces.

Each layer keeps a queue of its last `dilation` inputs, so a new sample costs one step through
the layers instead of a pass over the receptive field; the steps of a chunk run inside one
compiled loop. A long piece is cut into segments rendered side by side in one batch: each starts
`lead_in` samples early (the start-up transient, from silence, is thrown away) and overlaps the
next by `crossfade` samples, joined with a raised-cosine crossfade (gains summing to one, so a
passage both segments render alike keeps its level).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from keras import ops

from stages.compiled import compiled
from synthesize.mixture import mulaw_decode, sample_logistic_mixture, sample_mulaw
from synthesize.model import WaveNet
from synthesize.parallel import ParallelWaveNet  # noqa: F401 (registered for loading checkpoints)


class Generator:
    """Sampling temperature: the config's unless given (see synthesize.mixture)."""

    def __init__(self, model: WaveNet, chunk_samples: int = 2048, temperature: float | None = None):
        self.model, self.config, self.chunk_samples = model, model.config, chunk_samples
        self.temperature = self.config.sampling_temperature if temperature is None else float(temperature)
        if self.temperature < 0:
            raise ValueError(f"sampling temperature must be >= 0, got {self.temperature}")
        self._chunk = compiled(self._chunk_loop, xla=True)

    def _sample(self, params, uniforms):
        if self.config.output == "logistic":
            return sample_logistic_mixture(params, self.config.mixtures, uniforms[:, 0], uniforms[:, 1],
                                           self.temperature)
        return mulaw_decode(sample_mulaw(params, uniforms[:, 0], self.temperature))

    def _chunk_loop(self, conditioning, uniforms, previous, queues, start):
        """conditioning (B, n, C), uniforms (B, n, 2) -> (samples (B, n), last sample, queues)."""
        batch, count = ops.shape(conditioning)[0], ops.shape(conditioning)[1]

        def body(i, state):
            previous, queues, out = state
            params, queues = self.model.step(previous, ops.take(conditioning, i, axis=1), queues, start + i)
            sample = self._sample(params, ops.take(uniforms, i, axis=1))
            out = ops.slice_update(out, (0, i), ops.expand_dims(sample, 1))
            return sample, queues, out

        previous, queues, out = ops.fori_loop(0, count, body, (previous, list(queues), ops.zeros((batch, count))))
        return out, previous, queues

    def run(self, conditioning: np.ndarray, seed: int = 0, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(B, N, C) upsampled conditioning -> (B, N) samples, from silence."""
        batch, total = conditioning.shape[:2]
        rng = np.random.default_rng(seed)
        previous, queues = ops.zeros((batch,)), self.model.empty_queues(batch)
        pieces = []
        for start in range(0, total, self.chunk_samples):
            part = conditioning[:, start: start + self.chunk_samples]
            if part.shape[1] < self.chunk_samples:  # a fixed chunk shape: the loop is compiled once
                part = np.pad(part, ((0, 0), (0, self.chunk_samples - part.shape[1]), (0, 0)))
            uniforms = rng.uniform(size=(batch, self.chunk_samples, 2)).astype(np.float32)
            out, previous, queues = self._chunk(part.astype(np.float32), uniforms, previous, queues, np.int32(start))
            pieces.append(np.asarray(out)[:, : total - start])
            if progress:
                progress(min(self.chunk_samples, total - start))
        return np.concatenate(pieces, axis=1)


def segment_plan(total: int, segment: int, lead_in: int, crossfade: int) -> list[tuple[int, int]]:
    """(first, last) sample ranges to generate, each `lead_in` early and `crossfade` long past
    its share, all the same length (one batch)."""
    count = max(1, math.ceil(total / segment))
    return [(i * segment - lead_in, (i + 1) * segment + crossfade) for i in range(count)]


def join_segments(segments: np.ndarray, total: int, segment: int, lead_in: int, crossfade: int) -> np.ndarray:
    """Drop each segment's lead-in and crossfade it into the next (sin^2 in, cos^2 out)."""
    out = np.zeros(total + segment + crossfade, np.float32)
    fade = np.sin(np.linspace(0, np.pi / 2, crossfade, dtype=np.float32)) ** 2
    rise, fall = fade, 1.0 - fade
    for i, samples in enumerate(segments):
        body = samples[lead_in:]  # segment i's samples from i * segment on
        start = i * segment
        if i > 0 and crossfade:
            body = body.copy()
            body[:crossfade] *= rise
            out[start: start + crossfade] *= fall
            out[start: start + crossfade] += body[:crossfade]
            out[start + crossfade: start + len(body)] = body[crossfade:]
        else:
            out[start: start + len(body)] = body
    return out[:total]


def set_loudness(audio: np.ndarray, rms_lsb: float, peak: float = 0.99) -> np.ndarray:
    """Scale audio to an RMS of `rms_lsb` 16-bit steps, less where that would push a sample past
    `peak` (a plain gain: no clipping, the dynamics within the piece kept); silence stays silent."""
    level = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    if rms_lsb <= 0 or level == 0.0:
        return audio
    gain = min(rms_lsb / 32768 / level, peak / float(np.max(np.abs(audio))))
    return (audio * gain).astype(np.float32)


class ParallelGenerator:
    """Whole pieces from the parallel generator: the piece's timeline is cut into segments
    computed side by side in batches, each read with `overlap` extra samples either side (at least
    half the receptive field, so every kept sample sees exactly what one pass over the whole piece
    would show it), the overlaps then dropped. The noise is drawn once for the whole timeline and
    scaled by the temperature (0: no noise)."""

    def __init__(self, model, temperature: float | None = None, segment_samples: int = 64_000, batch_segments: int = 4):
        self.model, self.config = model, model.config
        self.temperature = self.config.sampling_temperature if temperature is None else float(temperature)
        if self.temperature < 0:
            raise ValueError(f"sampling temperature must be >= 0, got {self.temperature}")
        spf = self.config.samples_per_frame
        self.segment = max(spf, segment_samples // spf * spf)
        self.overlap = -(-(self.config.receptive_field // 2 + 1) // spf) * spf
        self.batch_segments = batch_segments
        self._forward = compiled(lambda inputs: self.model(inputs))

    def run(self, roll: np.ndarray, excitation: Callable[[int, int], np.ndarray] | None, seed: int = 0,
            progress: Callable[[int], None] | None = None) -> np.ndarray:
        """roll (frames, 176) of the piece, excitation(start, length) -> (length, E) -> (frames * spf,) audio."""
        c, spf = self.config, self.config.samples_per_frame
        margin = self.model.context.margin
        total = len(roll) * spf
        count = max(1, math.ceil(total / self.segment))
        span = self.segment + 2 * self.overlap
        noise = np.random.default_rng(seed).standard_normal(count * self.segment + 2 * self.overlap)
        noise = (noise * c.noise_std * self.temperature).astype(np.float32)
        before = self.overlap // spf + margin
        padded = np.pad(roll, ((before, count * self.segment // spf - len(roll) + before), (0, 0)))
        out = []
        for group in range(0, count, self.batch_segments):
            starts = [i * self.segment for i in range(group, min(count, group + self.batch_segments))]
            inputs = {"noise": np.stack([noise[s: s + span] for s in starts]),
                      "roll": np.stack([padded[s // spf: s // spf + span // spf + 2 * margin] for s in starts])}
            if c.harmonics:
                inputs["excitation"] = np.stack([excitation(s - self.overlap, span) for s in starts])
            audio = np.asarray(self._forward(inputs))
            out.extend(audio[:, self.overlap: self.overlap + self.segment])
            if progress:
                progress(min(len(starts) * self.segment, total - starts[0]))
        return np.concatenate(out)[:total].astype(np.float32)
