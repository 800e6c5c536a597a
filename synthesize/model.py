"""The MIDI-conditioned WaveNet (the Midi2Wave stage of Hawthorne et al. 2019) in Keras 3.

roll (B, frames + 2 margin, 176) -> ContextStack: non-causal dilated convolutions over the roll,
then learned upsampling to the audio rate -> conditioning (B, samples, C), joined by the harmonic
excitation (B, samples, 2H) when the config has harmonics (synthesize/excitation.py).
previous samples (B, samples) -> stacks of gated dilated causal convolutions, each also fed the
conditioning, with residual and skip connections -> per-sample output parameters: a discretized
mixture of logistics (3K values) or 256 mu-law logits.
Position n of the output is the distribution of sample n given samples < n (the input at n is
sample n - 1) and the roll around it.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import layers, ops

from synthesize.config import SynthesizerConfig
from synthesize.mixture import logistic_mixture_nll

PACKAGE = "wave2midi2wave.synthesize"
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class WaveNet(keras.Model):
    """{"audio": (B, N) previous samples, "roll": (B, N / spf + 2 margin, 176)[, "excitation": (B, N, 2H)]}
    -> (B, N, outputs)."""

    def __init__(self, config: dict | SynthesizerConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = SynthesizerConfig.from_dict(config)
        self.config = config or SynthesizerConfig()
        c = self.config
        self.context = ContextStack(c.context_channels, c.context_dilations, c.samples_per_frame, c.upsampling,
                                    name="context")
        self.input_projection = layers.Conv1D(c.residual_channels, 1, name="input")
        self.dilations = [2 ** i for _ in range(c.stacks) for i in range(c.layers_per_stack)]
        self.dilated = [layers.Conv1D(2 * c.gate_channels, 2, dilation_rate=d, padding="causal", name=f"dilated_{i}")
                        for i, d in enumerate(self.dilations)]
        self.conditioning = [layers.Conv1D(2 * c.gate_channels, 1, use_bias=False, name=f"conditioning_{i}")
                             for i in range(len(self.dilations))]
        self.residual = [layers.Conv1D(c.residual_channels, 1, name=f"residual_{i}")
                         for i in range(len(self.dilations))]
        self.skip = [layers.Conv1D(c.skip_channels, 1, name=f"skip_{i}") for i in range(len(self.dilations))]
        self.head = layers.Conv1D(c.skip_channels, 1, activation="relu", name="head")
        self.out = layers.Conv1D(self.output_size, 1, name="out")

    @property
    def output_size(self) -> int:
        return 3 * self.config.mixtures if self.config.output == "logistic" else 256

    def _gate(self, h):
        g = self.config.gate_channels
        return ops.tanh(h[..., :g]) * ops.sigmoid(h[..., g:])

    def condition(self, roll, excitation=None):
        """The per-sample conditioning (B, N, C [+ 2H]) the gated layers see."""
        return join_conditioning(self.context(roll), excitation if self.config.harmonics else None)

    def call(self, inputs):
        conditioning = self.condition(inputs["roll"], inputs.get("excitation"))  # (B, N, C)
        x = self.input_projection(ops.expand_dims(inputs["audio"] * self.config.audio_gain, -1))  # (B, N, R)
        skips = 0.0
        for dilated, cond, residual, skip in zip(self.dilated, self.conditioning, self.residual, self.skip):
            z = self._gate(dilated(x) + cond(conditioning))
            skips = skips + skip(z)
            x = x + residual(z)
        return self._in_sample_units(self.out(self.head(ops.relu(skips))))

    def _in_sample_units(self, params):
        """Mixture parameters predicted at `audio_gain` times the audio's scale -> the audio's own
        (means divided by the gain, log scales less its log), so the loss bins stay 16-bit steps."""
        gain, k = self.config.audio_gain, self.config.mixtures
        if gain == 1.0 or self.config.output != "logistic":
            return params
        return ops.concatenate([params[..., :k], params[..., k: 2 * k] / gain,
                                params[..., 2 * k:] - float(np.log(gain))], axis=-1)

    def step(self, previous, conditioning, queues, position):
        """One sample for every row. previous: (B,) the last sample; conditioning: (B, C) at this
        position; queues: per layer (B, dilation, R) the layer inputs of the last `dilation`
        positions, slot `position % dilation` holding the oldest. Returns (parameters (B, out),
        new queues). Exactly the parallel forward pass, one position at a time."""
        scaled = ops.expand_dims(ops.expand_dims(previous * self.config.audio_gain, -1), 1)  # (B, 1, 1)
        x = self.input_projection(scaled)[:, 0]  # (B, R)
        skips = 0.0
        updated = []
        for layer, dilation, queue in zip(range(len(self.dilations)), self.dilations, queues):
            slot = position % dilation
            past = ops.take(queue, slot, axis=1)  # input of this layer `dilation` positions ago
            updated.append(ops.slice_update(queue, (0, slot, 0), ops.expand_dims(x, 1)))
            kernel, bias = self.dilated[layer].kernel, self.dilated[layer].bias  # kernel: (2, R, 2G)
            h = ops.matmul(past, kernel[0]) + ops.matmul(x, kernel[1]) + bias
            h = h + ops.matmul(conditioning, self.conditioning[layer].kernel[0])
            z = self._gate(h)
            skips = skips + ops.matmul(z, self.skip[layer].kernel[0]) + self.skip[layer].bias
            x = x + ops.matmul(z, self.residual[layer].kernel[0]) + self.residual[layer].bias
        hidden = ops.relu(ops.matmul(ops.relu(skips), self.head.kernel[0]) + self.head.bias)
        return self._in_sample_units(ops.matmul(hidden, self.out.kernel[0]) + self.out.bias), updated

    def empty_queues(self, batch: int) -> list:
        return [ops.zeros((batch, d, self.config.residual_channels)) for d in self.dilations]

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}


def build_model(config: SynthesizerConfig) -> WaveNet:
    """The WaveNet of the config, built; a parallel config's is synthesize.parallel's generator."""
    if config.architecture == "parallel":
        return _parallel.build_parallel(config)
    model = WaveNet(config, name=f"wavenet_{config.name}")
    margin = sum(config.context_dilations)
    inputs = {"audio": np.zeros((1, config.samples_per_frame), np.float32),
              "roll": np.zeros((1, 1 + 2 * margin, ROLL_CHANNELS), np.float32)}
    if config.harmonics:
        inputs["excitation"] = np.zeros((1, config.samples_per_frame, config.excitation_channels), np.float32)
    model(inputs)
    return model


def transfer_weights(source: WaveNet, target: WaveNet) -> None:
    """Copy a trained WaveNet's weights into one of the same sizes (the same function also when
    the audio gains differ), also from transposed to linear upsampling: the per-frame projection
    becomes the transposed kernel's mean over the frame's samples, which keeps what a frame says
    and drops the pattern repeated within every frame."""
    def parts(model):
        return [model.context.project, *model.context.convs, model.input_projection, *model.dilated,
                *model.conditioning, *model.residual, *model.skip, model.head, model.out]

    for source_layer, target_layer in zip(parts(source), parts(target), strict=True):
        target_layer.set_weights(source_layer.get_weights())
    _rescale_audio_gain(target, target.config.audio_gain / source.config.audio_gain)
    if source.config.upsampling == target.config.upsampling:
        upsampler = "frame_output" if target.config.upsampling == "linear" else "upsample"
        getattr(target.context, upsampler).set_weights(getattr(source.context, upsampler).get_weights())
    elif target.config.upsampling == "linear":
        kernel, bias = source.context.upsample.get_weights()  # kernel: (samples, out, in)
        target.context.frame_output.set_weights([kernel.mean(axis=0).T, bias])
    else:
        raise ValueError("linear upsampling cannot be turned back into a transposed convolution")


def _rescale_audio_gain(model: WaveNet, ratio: float) -> None:
    """Keep a transferred WaveNet's function when its audio gain is `ratio` times its source's:
    the input projection reads `ratio` times larger samples, the output predicts in units `ratio`
    times larger."""
    if ratio == 1.0:
        return
    kernel, bias = model.input_projection.get_weights()
    model.input_projection.set_weights([kernel / ratio, bias])
    if model.config.output == "logistic":
        k = model.config.mixtures
        kernel, bias = model.out.get_weights()
        kernel[..., k: 2 * k] *= ratio
        bias[k: 2 * k] *= ratio
        bias[2 * k:] += np.log(ratio)
        model.out.set_weights([kernel, bias])


@keras.saving.register_keras_serializable(package=PACKAGE)
class MixtureLoss(keras.losses.Loss):
    def __init__(self, mixtures: int, **kwargs):
        super().__init__(**kwargs)
        self.mixtures = mixtures

    def call(self, y_true, y_pred):
        return logistic_mixture_nll(y_true, y_pred, self.mixtures)

    def get_config(self):
        return {**super().get_config(), "mixtures": self.mixtures}


def compile_model(model: WaveNet) -> WaveNet:
    c = model.config
    schedule = keras.optimizers.schedules.ExponentialDecay(c.learning_rate, c.decay_steps, c.decay_rate)
    loss = (MixtureLoss(c.mixtures) if c.output == "logistic"
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=c.clip_norm, use_ema=c.weight_average_momentum > 0,
                                      ema_momentum=c.weight_average_momentum)
    model.compile(optimizer=optimizer, loss=loss)
    return model


# Loading any synthesizer checkpoint imports this module: register the parallel generator too.
from synthesize import parallel as _parallel  # noqa: E402,F401
