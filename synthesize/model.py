"""The MIDI-conditioned WaveNet (the Midi2Wave stage of Hawthorne et al. 2019) in Keras 3.

roll (B, frames + 2 margin, 176) -> ContextStack (synthesize/wavenet.py, shared with the parallel
generator): non-causal dilated convolutions over the roll, then upsampling to the audio rate ->
conditioning (B, samples, C), joined by the harmonic excitation (B, samples, 2H) when the config has
harmonics (synthesize/excitation.py).
previous samples (B, samples) -> stacks of gated dilated causal convolutions, each also fed the
conditioning, with residual and skip connections -> per-sample output parameters: a discretized
mixture of logistics (3K values) or 256 mu-law logits.
Position n of the output is the distribution of sample n given samples < n (the input at n is
sample n - 1) and the roll around it.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from synthesize.config import SynthesizerConfig
from synthesize.mixture import logistic_mixture_nll
from synthesize.parallel import build_parallel
from synthesize.wavenet import PACKAGE, ROLL_CHANNELS, GatedWaveNet, as_config


@keras.saving.register_keras_serializable(package=PACKAGE)
class WaveNet(GatedWaveNet):
    """{"audio": (B, N) previous samples, "roll": (B, N / spf + 2 margin, 176)[, "excitation": (B, N, 2H)]}
    -> (B, N, outputs)."""

    def __init__(self, config: dict | SynthesizerConfig | None = None, **kwargs):
        super().__init__(as_config(config, SynthesizerConfig), **kwargs)

    def dilated_layer(self, dilation: int, name: str) -> layers.Conv1D:
        return layers.Conv1D(2 * self.config.gate_channels, 2, dilation_rate=dilation, padding="causal", name=name)

    @property
    def output_size(self) -> int:
        return 3 * self.config.mixtures if self.config.output == "logistic" else 256

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


def build_model(config: SynthesizerConfig) -> WaveNet:
    """The WaveNet of the config, built; a parallel config's is synthesize.parallel's generator."""
    if config.architecture == "parallel":
        return build_parallel(config)
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
