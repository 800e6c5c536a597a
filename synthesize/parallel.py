"""The non-autoregressive WaveNet generator (Parallel WaveGAN's generator, Yamamoto et al. 2020),
conditioned as the autoregressive WaveNet is, and its multi-resolution STFT loss, in Keras 3.

noise (B, N) and the harmonic excitation (B, N, E) -> input projection -> stacks of gated
non-causal dilated convolutions, each also fed the conditioning (the ContextStack's upsampled roll
joined by the excitation; the layers it shares with the autoregressive WaveNet are in
synthesize/wavenet.py), with residual and skip connections -> audio (B, N) in one pass. The
excitation in the input makes it a neural source-filter model too: the layers shape given
oscillators into piano tone instead of inventing periodicity from noise. With a loss on STFT
magnitudes only, the excitation's phase need not match the recording's.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from synthesize.config import SynthesizerConfig
from synthesize.wavenet import PACKAGE, ROLL_CHANNELS, GatedWaveNet, as_config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ParallelWaveNet(GatedWaveNet):
    """{"noise": (B, N), "roll": (B, N / spf + 2 margin, 176)[, "excitation": (B, N, E)]} -> (B, N).

    Output sample n sees inputs within receptive_field // 2 samples of n each side."""

    def __init__(self, config: dict | SynthesizerConfig | None = None, **kwargs):
        config = as_config(config, SynthesizerConfig.default)
        if config.architecture != "parallel":
            raise ValueError(f"ParallelWaveNet needs a parallel config, not {config.architecture!r}")
        super().__init__(config, **kwargs)

    def dilated_layer(self, dilation: int, name: str) -> layers.Conv1D:
        c = self.config
        return layers.Conv1D(2 * c.gate_channels, c.kernel_size, dilation_rate=dilation, padding="same", name=name)

    @property
    def output_size(self) -> int:
        return 1

    def call(self, inputs):
        c = self.config
        excitation = inputs.get("excitation")
        conditioning = self.condition(inputs["roll"], excitation)  # (B, N, C)
        source = ops.expand_dims(inputs["noise"], -1)  # (B, N, 1)
        if c.harmonics:
            source = ops.concatenate([source, ops.cast(excitation, source.dtype)], axis=-1)
        x = self.input_projection(source)  # (B, N, R)
        skips = 0.0
        for dilated, cond, residual, skip in zip(self.dilated, self.conditioning, self.residual, self.skip):
            z = self._gate(dilated(x) + cond(conditioning))
            skips = skips + skip(z)
            x = (x + residual(z)) * math.sqrt(0.5)
        skips = skips * math.sqrt(1.0 / len(self.dilations))
        # Predicted at audio_gain times the audio's level: the renders are quiet (rms about 0.02).
        return self.out(self.head(ops.relu(skips)))[..., 0] / c.audio_gain


def build_parallel(config: SynthesizerConfig) -> ParallelWaveNet:
    model = ParallelWaveNet(config, name=f"parallel_wavenet_{config.name}")
    margin = sum(config.context_dilations)
    spf = config.samples_per_frame
    inputs = {"noise": np.zeros((1, spf), np.float32),
              "roll": np.zeros((1, 1 + 2 * margin, ROLL_CHANNELS), np.float32)}
    if config.harmonics:
        inputs["excitation"] = np.zeros((1, spf, config.excitation_channels), np.float32)
    model(inputs)
    return model


def stft_magnitude(audio, fft_size: int):
    """(B, N) -> (B, frames, fft_size / 2 + 1) magnitudes, Hann window, hop a quarter."""
    real, imag = ops.stft(audio, fft_size, fft_size // 4, fft_size)
    return ops.sqrt(ops.square(real) + ops.square(imag) + 1e-8)  # a floor 80 dB below a unit sinusoid's peak


def stft_losses(target, generated, fft_size: int):
    """(spectral convergence, mean absolute log-magnitude difference) at one resolution."""
    wanted, got = stft_magnitude(target, fft_size), stft_magnitude(generated, fft_size)
    convergence = ops.sqrt(ops.sum(ops.square(wanted - got))) / ops.sqrt(ops.sum(ops.square(wanted)))
    log_magnitude = ops.mean(ops.abs(ops.log(wanted) - ops.log(got)))
    return convergence, log_magnitude


@keras.saving.register_keras_serializable(package=PACKAGE)
class MultiResolutionSTFTLoss(keras.losses.Loss):
    """Mean over FFT sizes of spectral convergence + log-magnitude distance (Yamamoto et al. 2020,
    Arik et al. 2019). y_true, y_pred: (B, N) audio."""

    def __init__(self, fft_sizes=(2048, 1024, 512, 256), **kwargs):
        super().__init__(**kwargs)
        self.fft_sizes = tuple(fft_sizes)

    def call(self, y_true, y_pred):
        total = 0.0
        for size in self.fft_sizes:
            convergence, log_magnitude = stft_losses(ops.cast(y_true, y_pred.dtype), y_pred, size)
            total = total + convergence + log_magnitude
        return total / len(self.fft_sizes)

    def get_config(self):
        return {**super().get_config(), "fft_sizes": self.fft_sizes}


def generator_optimizer(c: SynthesizerConfig) -> keras.optimizers.Optimizer:
    """Adam with the config's decaying learning rate and gradient clipping."""
    schedule = keras.optimizers.schedules.ExponentialDecay(c.learning_rate, c.decay_steps, c.decay_rate)
    return keras.optimizers.Adam(schedule, global_clipnorm=c.clip_norm)


def compile_parallel(model: ParallelWaveNet) -> ParallelWaveNet:
    model.compile(optimizer=generator_optimizer(model.config), loss=MultiResolutionSTFTLoss(model.config.stft_sizes))
    return model
