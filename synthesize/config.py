"""Sizes and settings of the MIDI-conditioned WaveNet (the Midi2Wave stage)."""

from __future__ import annotations

import dataclasses

from stages import options
from stages.config import JsonConfig
from stages.settings import Settings, setting


@dataclasses.dataclass(frozen=True)
class SynthesizerConfig(JsonConfig):
    name: str = "default"
    # "autoregressive": the paper's WaveNet (causal, a mixture of logistics per sample, generated
    # one sample at a time; synthesize/model.py). "parallel": a non-causal WaveNet generator that
    # turns noise and the conditioning into the whole waveform in one pass, trained with a
    # multi-resolution STFT loss (Parallel WaveGAN's generator; synthesize/parallel.py).
    # Checkpoints saved before this field existed are autoregressive.
    architecture: str = "autoregressive"
    sample_rate_hz: int = 16_000
    roll_rate_hz: int = 250  # conditioning frames per second: 64 samples each at 16 kHz
    # Conditioning: non-causal dilated convolutions over the roll, then upsampling to the audio
    # rate (synthesize/model.py ContextStack): "linear" for every named config; "transposed" is
    # kept for checkpoints saved before this field existed.
    context_channels: int = 64
    context_dilations: tuple[int, ...] = (1, 2, 4, 8)
    upsampling: str = "transposed"
    # Harmonic excitation (synthesize/excitation.py): sin and cos of this many harmonics of the
    # sounding notes, joined to the conditioning. 0: the paper's roll-only conditioning.
    harmonics: int = 0
    # Each harmonic once per decay here (multiples of the rough piano decay of excitation.py), so
    # the network can mix a fast and a slow decay (a piano's prompt sound and aftersound).
    excitation_decays: tuple[float, ...] = (1.0,)
    # The excitation fades out after each note's release (a damper's time constant) instead of
    # stopping dead, and its partials are stretched as a piano's stiff strings stretch them.
    excitation_release: bool = False
    inharmonicity: bool = False
    # The renderer of the training audio starts and stops notes on this grid of samples (FluidSynth:
    # its 64-sample block); notes are snapped to it for the roll and the excitation, in training
    # and in generation (synthesize/conditioning.py snap_to_render_grid). 0: exact MIDI times (for
    # training on real recordings).
    render_grid_samples: int = 0
    # WaveNet: `stacks` x `layers_per_stack` gated layers, dilations 1, 2, 4, ... per stack.
    stacks: int = 2
    layers_per_stack: int = 8
    residual_channels: int = 32
    gate_channels: int = 64
    skip_channels: int = 64
    # Output: "logistic" (discretized mixture of logistics over 16-bit samples) or "mulaw"
    # (256-way softmax over 8-bit mu-law).
    output: str = "logistic"
    mixtures: int = 10
    # The renders are quiet (rms about 0.015 of full scale, peaks 0.15-0.3): the network reads
    # the past samples times this gain and predicts in those units (synthesize/model.py), so its
    # weights start at a useful scale instead of having to grow 30-fold first.
    audio_gain: float = 1.0
    # Training audio gets Gaussian noise of this many 16-bit steps (then is rounded to 16 bits):
    # the renders' stretches of exact digital silence otherwise let the mixture's scale shrink
    # far below one step, where one misplaced sample costs hundreds of nats.
    dither_lsb: float = 0.0
    # Gaussian noise of this many 16-bit steps on the past samples the network reads in training
    # (not on the targets): with a clean past, teacher forcing teaches it to continue the waveform
    # and ignore the MIDI, which drifts once it hears its own samples.
    input_noise_lsb: float = 0.0
    # Generation: 1 samples the learned distribution as it is; lower values trade its noise for
    # stability (a small WaveNet's sampling noise snowballs into noise and drift); 0: no noise.
    sampling_temperature: float = 1.0
    # Generation: the rendered piece is scaled to this RMS level, in 16-bit steps, never past a
    # peak of 0.99 of full scale; 0 keeps the level as sampled. At low temperatures a WaveNet that
    # is unsure of the phase samples near its mixture's means, 3-10x quieter than its training
    # audio here, and the transcriber then misses notes (the level is chosen on round trips).
    output_rms_lsb: float = 0.0
    # Parallel generator: the dilated convolutions' kernel width (the autoregressive WaveNet's is
    # 2, causal), the standard deviation of its input noise, and its training loss: spectral
    # convergence plus mean absolute log-magnitude difference at these FFT sizes (hop a quarter).
    kernel_size: int = 2
    noise_std: float = 1.0
    stft_sizes: tuple[int, ...] = (2048, 1024, 512, 256)
    # Parallel generator, adversarial training (synthesize/adversarial.py): a discriminator of this
    # many dilated convolutions (0: none, the STFT loss alone) learns to tell the recording from the
    # generated audio; its least-squares score joins the generator's loss with this weight
    # (Parallel WaveGAN: 10 layers of 64 channels, weight 4, learning rate 5e-5). "waveform": that
    # discriminator, on samples; "spectrogram": 2-D convolutions on log spectrograms at three
    # resolutions (UnivNet's), 4 layers of 32 channels.
    discriminator: str = "waveform"
    discriminator_layers: int = 0
    discriminator_channels: int = 64
    adversarial_weight: float = 4.0
    discriminator_learning_rate: float = 5e-5
    # Training: random crops (with teacher forcing for the autoregressive WaveNet).
    crop_samples: int = 4_096  # many short crops: more updates per CPU hour; the receptive field is 511
    batch_size: int = 8
    # At gain 1, 1e-3 and 3e-4 diverged within 750 steps; `default` (gain 16) trains at 1e-3.
    learning_rate: float = 1e-4
    decay_steps: int = 20_000
    decay_rate: float = 0.5
    clip_norm: float = 1.0
    # Training: also keep an exponential moving average of the weights with this momentum (0:
    # none), saved each epoch as averaged-epoch-N.keras, to smooth the swings of the round trip
    # from epoch to epoch (measured at 0.995: no better than the single epochs; README).
    weight_average_momentum: float = 0.0

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate_hz // self.roll_rate_hz

    @property
    def receptive_field(self) -> int:
        """Samples one output sees through the dilated convolutions (past ones only when causal)."""
        return self.stacks * (self.kernel_size - 1) * (2 ** self.layers_per_stack - 1) + 1

    @classmethod
    def paper(cls) -> "SynthesizerConfig":
        return cls(name="paper", upsampling="linear", context_channels=256, stacks=3, layers_per_stack=10,
                   residual_channels=256, gate_channels=512, skip_channels=256, crop_samples=16_000,
                   audio_gain=16.0, dither_lsb=1.0, render_grid_samples=64)

    @property
    def excitation_channels(self) -> int:
        return 2 * self.harmonics * len(self.excitation_decays)

    @classmethod
    def default(cls) -> "SynthesizerConfig":
        """The parallel generator on a 12-harmonic excitation with two decays, a release fade and
        stretched partials: 2 stacks x 9 layers of width-3 dilated convolutions (receptive field
        2,045 samples, 0.13 s), for audio in one pass on a CPU."""
        return cls(architecture="parallel", upsampling="linear", kernel_size=3, stacks=2, layers_per_stack=9,
                   residual_channels=48, gate_channels=48, skip_channels=48, context_channels=64,
                   harmonics=12, excitation_decays=(0.2, 1.0), excitation_release=True, inharmonicity=True,
                   audio_gain=4.0, crop_samples=8_192, batch_size=4, learning_rate=1e-3, clip_norm=10.0,
                   decay_steps=10_000, sampling_temperature=1.0)

    @classmethod
    def adversarial(cls) -> "SynthesizerConfig":
        """`default` trained on against Parallel WaveGAN's discriminator, at a fine-tuning
        learning rate: meant to start from a generator trained with the STFT loss (`--from`)."""
        return dataclasses.replace(cls.default(), name="adversarial", discriminator_layers=10, learning_rate=2e-4)

    @classmethod
    def adversarial_spectrogram(cls) -> "SynthesizerConfig":
        """`adversarial` with the spectrogram discriminator, at 2e-4 for both networks."""
        return dataclasses.replace(cls.adversarial(), name="adversarial_spectrogram", discriminator="spectrogram",
                                   discriminator_layers=4, discriminator_channels=32,
                                   discriminator_learning_rate=2e-4)

    @classmethod
    def autoregressive(cls) -> "SynthesizerConfig":
        """The autoregressive WaveNet shipped before the parallel generator (trained on FluidR3_GM)."""
        return cls(name="autoregressive", upsampling="linear", harmonics=4, audio_gain=16.0, dither_lsb=1.0,
                   input_noise_lsb=400.0, learning_rate=1e-3, sampling_temperature=0.05, output_rms_lsb=450.0,
                   render_grid_samples=64)  # chosen on validation round trips

    @classmethod
    def tiny(cls) -> "SynthesizerConfig":
        return cls(name="tiny", upsampling="linear", context_channels=8, context_dilations=(1, 2), stacks=1,
                   layers_per_stack=4, residual_channels=8, gate_channels=8, skip_channels=8, harmonics=2, mixtures=3,
                   crop_samples=512, batch_size=2, audio_gain=16.0, dither_lsb=1.0, render_grid_samples=64)

    @classmethod
    def tiny_parallel(cls) -> "SynthesizerConfig":
        return dataclasses.replace(cls.default(), name="tiny_parallel", context_channels=8, context_dilations=(1, 2),
                                   stacks=1, layers_per_stack=3, residual_channels=8, gate_channels=8,
                                   skip_channels=8, harmonics=2, crop_samples=1024, batch_size=2,
                                   stft_sizes=(256, 64))

    @classmethod
    def named(cls, name: str) -> "SynthesizerConfig":
        """`paper`, `default`, `tiny`, or `autoregressive` / `adversarial` / `adversarial_spectrogram` /
        `tiny_parallel`."""
        if name in ("autoregressive", "adversarial", "adversarial_spectrogram", "tiny_parallel"):
            return getattr(cls, name)()
        return super().named(name)


@dataclasses.dataclass(frozen=True)
class RenderSettings(Settings):
    """How the synthesizer renders, declared once: `w2m2w synthesize` derives its options from these
    fields; the stage, the `Synthesizer`, `synthesize()` and the Prefect task take the object. None:
    the checkpoint's own value."""

    seed: int = setting(0, options.SEED, help="sampling seed: the same seed, the same audio")
    temperature: float | None = setting(
        None, options.SYNTH_TEMPERATURE,
        help="sampling temperature: 1 samples the learned distribution, 0 takes its likeliest value without noise; "
             "for the parallel generator, the scale of its input noise (default: the checkpoint's)")
    output_rms_lsb: float | None = setting(
        None, options.LEVEL, "--level", metavar="STEPS",
        help="RMS level of each rendered piece, in 16-bit steps (450 is about -37 dBFS, 3,300 about -20 dBFS, the "
             "level of the Salamander training renders); 0 keeps the level as generated (default: the checkpoint's)")
