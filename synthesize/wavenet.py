"""The layers both WaveNets share (synthesize/model.py's autoregressive one and
synthesize/parallel.py's generator), so that each imports them and neither imports the other.

roll (B, frames + 2 margin, 176) -> ContextStack: non-causal dilated convolutions over the roll,
then upsampling to the audio rate -> conditioning (B, samples, C), joined by the harmonic
excitation (B, samples, E) when the config has harmonics (synthesize/excitation.py).
GatedWaveNet holds the rest of what the two build alike: an input projection, gated dilated
convolutions each also fed the conditioning, residual and skip connections, a head and an output
projection. Each WaveNet says how its dilated convolutions look and what it outputs.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
from keras import layers, ops

from synthesize.config import SynthesizerConfig

PACKAGE = "wave2midi2wave.synthesize"  # the registered names of every .keras file: keep it
ROLL_CHANNELS = 176  # held velocity and onset velocity for each of the 88 keys


def join_conditioning(context, excitation=None):
    """The roll's context (B, N, C) with the harmonic excitation (B, N, E) beside it, if any:
    what every gated layer of both WaveNets reads."""
    if excitation is None:
        return context
    return ops.concatenate([context, ops.cast(excitation, context.dtype)], axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ContextStack(layers.Layer):
    """Conditioning. Input shape: (batch, frames, 176). Output shape: (batch, (frames - 2 margin)
    * samples_per_frame, channels): the margin frames on each side only give context.

    Upsampling to the audio rate: "linear" projects each frame and interpolates linearly between
    frame centres. "transposed" (a learned 64-sample pattern per frame, how the first checkpoints
    were trained) repeats that pattern every frame, a 250 Hz buzz the transcriber hears as notes
    at B3 and its harmonics (94% of that kernel's norm was the within-frame pattern)."""

    def __init__(self, channels: int, dilations, samples_per_frame: int, upsampling: str = "transposed", **kwargs):
        super().__init__(**kwargs)
        if upsampling not in ("linear", "transposed"):
            raise ValueError(f"upsampling must be 'linear' or 'transposed', not {upsampling!r}")
        if upsampling == "linear" and not sum(dilations):
            raise ValueError("linear upsampling needs context dilations: it reads one margin frame each side")
        self.channels, self.dilations, self.samples_per_frame = channels, tuple(dilations), samples_per_frame
        self.upsampling = upsampling
        self.project = layers.Conv1D(channels, 1)
        self.convs = [layers.Conv1D(channels, 3, padding="same", dilation_rate=d, activation="relu")
                      for d in self.dilations]
        if upsampling == "linear":
            self.frame_output = layers.Dense(channels)
        else:
            self.upsample = layers.Conv1DTranspose(channels, samples_per_frame, strides=samples_per_frame)

    @property
    def margin(self) -> int:
        """Frames of context each side that a frame's conditioning depends on."""
        return sum(self.dilations)

    def call(self, roll):
        x = self.project(roll)
        for conv in self.convs:
            x = x + conv(x)
        frames, m = ops.shape(x)[1], self.margin
        if self.upsampling == "transposed":
            return self.upsample(x[:, m: frames - m])  # frame t -> samples [t * spf, (t + 1) * spf)
        return self._interpolate(self.frame_output(x[:, m - 1: frames - m + 1]))

    def _interpolate(self, x):
        """(B, frames + 2, C), one frame of context each side -> (B, frames * spf, C), each frame's
        value at its centre sample and straight lines between centres."""
        spf = self.samples_per_frame
        left, right = x[:, :-1, None, :], x[:, 1:, None, :]  # segment i joins the centres of frames i, i + 1
        weight = ops.reshape(ops.arange(spf, dtype=x.dtype) / spf, (1, 1, spf, 1))
        lines = left + (right - left) * weight  # (B, frames + 1, spf, C)
        batch, segments, channels = ops.shape(x)[0], ops.shape(x)[1] - 1, ops.shape(x)[2]
        samples = ops.reshape(lines, (batch, segments * spf, channels))
        # Sample 0 of the first inner frame lies half a frame after the centre of the frame before.
        return samples[:, spf // 2: spf // 2 + (segments - 1) * spf]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "dilations": self.dilations,
                "samples_per_frame": self.samples_per_frame, "upsampling": self.upsampling}


def as_config(config: dict | SynthesizerConfig | None,
              default: Callable[[], SynthesizerConfig]) -> SynthesizerConfig:
    """A WaveNet's config argument (a dict when Keras loads a checkpoint, or None) as a config."""
    if isinstance(config, dict):
        return SynthesizerConfig.from_dict(config)
    return config or default()


class GatedWaveNet(keras.Model):
    """The layers both WaveNets build alike, named alike (a checkpoint's weights are found by these
    attribute and layer names). A subclass gives `dilated_layer` and `output_size`, and its own `call`."""

    def __init__(self, config: SynthesizerConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = c = config
        self.context = ContextStack(c.context_channels, c.context_dilations, c.samples_per_frame, c.upsampling,
                                    name="context")
        self.input_projection = layers.Conv1D(c.residual_channels, 1, name="input")
        self.dilations = [2 ** i for _ in range(c.stacks) for i in range(c.layers_per_stack)]
        self.dilated = [self.dilated_layer(d, name=f"dilated_{i}") for i, d in enumerate(self.dilations)]
        self.conditioning = [layers.Conv1D(2 * c.gate_channels, 1, use_bias=False, name=f"conditioning_{i}")
                             for i in range(len(self.dilations))]
        self.residual = [layers.Conv1D(c.residual_channels, 1, name=f"residual_{i}")
                         for i in range(len(self.dilations))]
        self.skip = [layers.Conv1D(c.skip_channels, 1, name=f"skip_{i}") for i in range(len(self.dilations))]
        self.head = layers.Conv1D(c.skip_channels, 1, activation="relu", name="head")
        self.out = layers.Conv1D(self.output_size, 1, name="out")

    def dilated_layer(self, dilation: int, name: str) -> layers.Conv1D:
        """The dilated convolution of one gated layer: (B, N, R) -> (B, N, 2G)."""
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        raise NotImplementedError

    def _gate(self, h):
        """(..., 2G) -> (..., G): tanh of the first half times sigmoid of the second."""
        g = self.config.gate_channels
        return ops.tanh(h[..., :g]) * ops.sigmoid(h[..., g:])

    def condition(self, roll, excitation=None):
        """The per-sample conditioning (B, N, C [+ E]) the gated layers see."""
        return join_conditioning(self.context(roll), excitation if self.config.harmonics else None)

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}
