"""What each synthesizer job takes, declared once as frozen settings dataclasses (stages/settings.py):
`w2m2w` derives its options from the fields and its descriptions from the docstrings, and the job
functions that `w2m2w` names take the objects. Light to import: no TensorFlow."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stages import options
from stages.settings import Settings, argument, setting

CONFIGS = ("tiny", "default", "paper", "autoregressive", "adversarial", "adversarial_spectrogram", "tiny_parallel")


@dataclasses.dataclass(frozen=True)
class SynthesizeFiles(Settings):
    """Render every MIDI file under IN to a 16 kHz WAV under OUT with the MIDI-conditioned WaveNet,
    mirroring the tree. Slow work: a bar shows the seconds rendered and the time left. Finished files are
    skipped."""

    inputs: Path = argument(Path, "a MIDI file or folder")
    out: Path = argument(Path, "output folder")
    checkpoint: Path | None = setting(None, Path, help="a .keras synthesizer (default: the shipped one)")
    max_seconds: float = setting(1200.0, options.POSITIVE, help="refuse pieces longer than this, sustain included "
                                                                "(default: 1200, hours of CPU time)")
    overwrite: bool = setting(False)

    def preflight(self, rendering=None) -> None:
        from stages.cli import check_paths

        check_paths(self.inputs, self.out, {"synthesizer": self.checkpoint})


@dataclasses.dataclass(frozen=True)
class SynthesizerTraining(Settings):
    """Train the MIDI-conditioned WaveNet on random crops of ROOT's train split: the parallel generator
    (default) with a multi-resolution STFT loss (adversarial: and a discriminator's least-squares loss), the
    autoregressive one (autoregressive, paper) with teacher forcing; after every epoch, the validation loss
    with the true roll and with shuffled rolls (the conditioning must matter). Rerunning resumes."""

    root: Path = argument(Path, "MAESTRO-layout dataset at 16 kHz (w2m2w maestro render)")
    run_dir: Path = argument(Path)
    config: str = setting(
        "default", CONFIGS,
        help="default: the parallel generator; adversarial: it, trained on against a discriminator (Parallel "
             "WaveGAN; start it --from a trained generator); adversarial_spectrogram: a discriminator on "
             "spectrograms instead (UnivNet's); autoregressive: the WaveNet shipped before it; paper: the paper's "
             "autoregressive sizes")
    output: str | None = setting(None, ("logistic", "mulaw"), help="output distribution (default: the config's)")
    steps: int = setting(20_000, options.COUNT)
    steps_per_epoch: int = setting(250, options.COUNT)
    learning_rate: float | None = setting(None, options.LEARNING_RATE,
                                          help="initial learning rate (default: the config's)")
    discriminator_learning_rate: float | None = setting(
        None, options.LEARNING_RATE,
        help="adversarial: the discriminator's learning rate (default: the config's, 5e-5)")
    adversarial_weight: float | None = setting(
        None, options.number(at_least=0), help="adversarial: the weight of the discriminator's score in the "
                                               "generator's loss (default: the config's, 4)")
    input_noise: float | None = setting(None, options.number(at_least=0), help="noise on the past samples the "
                                        "network reads, in 16-bit steps (default: the config's)")
    average_weights: float | None = setting(
        None, options.MOMENTUM, metavar="MOMENTUM",
        help="also keep a moving average of the weights with this momentum (e.g. 0.995), saved each epoch as "
             "averaged-epoch-N.keras (default: the config's; 0: none)")
    seed: int = setting(0, options.SEED)
    initial_weights: Path | None = setting(
        None, Path, "--from", "start from this .keras WaveNet's weights (same sizes; older transposed upsampling "
                              "is converted), e.g. a run's best.keras")

    def training_config(self):
        """The named SynthesizerConfig with these changes."""
        from synthesize.config import SynthesizerConfig

        config = SynthesizerConfig.named(self.config)
        adversarial = {"discriminator_learning_rate": self.discriminator_learning_rate,
                       "adversarial_weight": self.adversarial_weight}
        if any(value is not None for value in adversarial.values()) and not config.discriminator_layers:
            raise ValueError("--discriminator-learning-rate and --adversarial-weight need --config adversarial")
        changes = {"learning_rate": self.learning_rate or None, "input_noise_lsb": self.input_noise,
                   "weight_average_momentum": self.average_weights, **adversarial}
        config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
        if self.output:
            config = dataclasses.replace(config, output=self.output, name=f"{config.name}-{self.output}")
        return config

    def preflight(self) -> None:
        self.training_config()  # a bad combination is said before TensorFlow loads


@dataclasses.dataclass(frozen=True)
class SynthesizerEvaluation(Settings):
    """Render the first --seconds of --count held-out pieces with the WaveNet and, for reference, with
    FluidSynth (TimGM6mb); transcribe both with the shipped transcriber and score them against the MIDI
    (round-trip F1), and measure their multi-resolution log-mel distance to FluidSynth with FluidR3_GM.
    Prints JSON."""

    midi_dir: Path = argument(Path)
    split_csv: Path | None = setting(None, Path)
    split: str = setting("test")
    seconds: float = setting(10.0, options.POSITIVE)
    count: int = setting(20, options.COUNT)
    checkpoint: Path | None = setting(None, Path, help="a .keras synthesizer (default: the shipped one)")
    transcriber: Path | None = setting(None, Path, help="a .keras transcriber (default: the shipped one)")
    page: Path | None = setting(
        None, Path, metavar="DIR", help="also write a listening page there: each excerpt by FluidR3_GM, the WaveNet "
                                        "and TimGM6mb as players side by side, with spectrograms (open DIR/index.html)")
