"""The `w2m2w synthesize`, `train synthesize` and `evaluate synthesize` commands."""

from __future__ import annotations

import json
from pathlib import Path

from stages import options
from stages.cli import check_paths
from stages.settings import add_arguments, from_namespace
from synthesize.config import RenderSettings


def add_synthesize(commands) -> None:
    parser = commands.add_parser(
        "synthesize", help="MIDI -> piano audio (WaveNet)",
        description="Render every MIDI file under IN to a 16 kHz WAV under OUT with the "
                    "MIDI-conditioned WaveNet, mirroring the tree. Slow work: a bar shows the "
                    "seconds rendered and the time left. Finished files are skipped.")
    parser.add_argument("inputs", type=Path, help="a MIDI file or folder")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="a .keras synthesizer (default: the shipped one)")
    add_arguments(parser, RenderSettings)
    parser.add_argument("--max-seconds", type=options.POSITIVE, default=1200.0,
                        help="refuse pieces longer than this, sustain included (default: 1200, hours of CPU time)")
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(run=run_synthesize)


def run_synthesize(args) -> int:
    check_paths(args.inputs, args.out, {"synthesizer": args.checkpoint})  # before TensorFlow loads
    from stages.checkpoints import checkpoint_for
    from synthesize.stage import SynthesizeStage

    stage = SynthesizeStage(checkpoint_for("synthesize", args.checkpoint), from_namespace(RenderSettings, args),
                            max_seconds=args.max_seconds)
    report = stage.run(args.inputs, args.out, overwrite=args.overwrite)
    print(report.summary())
    return 0 if report.ok else 1


def add_train(models) -> None:
    parser = models.add_parser(
        "synthesize", help="the WaveNet on a rendered MAESTRO-layout dataset",
        description="Train the MIDI-conditioned WaveNet on random crops of ROOT's train split: the "
                    "parallel generator (default) with a multi-resolution STFT loss (adversarial: and a "
                    "discriminator's least-squares loss), the autoregressive "
                    "one (autoregressive, paper) with teacher forcing; after every epoch, the validation "
                    "loss with the true roll and with shuffled rolls (the conditioning must matter). "
                    "Rerunning resumes.")
    parser.add_argument("root", type=Path, help="MAESTRO-layout dataset at 16 kHz (w2m2w maestro render)")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--config", default="default",
                        choices=("tiny", "default", "paper", "autoregressive", "adversarial", "adversarial_spectrogram",
                                 "tiny_parallel"),
                        help="default: the parallel generator; adversarial: it, trained on against a discriminator "
                             "(Parallel WaveGAN; start it --from a trained generator); adversarial_spectrogram: "
                             "a discriminator on spectrograms instead (UnivNet's); autoregressive: the WaveNet "
                             "shipped before it; paper: the paper's autoregressive sizes")
    parser.add_argument("--output", choices=("logistic", "mulaw"), help="output distribution (default: the config's)")
    parser.add_argument("--steps", type=options.COUNT, default=20_000)
    parser.add_argument("--steps-per-epoch", type=options.COUNT, default=250)
    parser.add_argument("--learning-rate", type=options.LEARNING_RATE,
                        help="initial learning rate (default: the config's)")
    parser.add_argument("--discriminator-learning-rate", type=options.LEARNING_RATE,
                        help="adversarial: the discriminator's learning rate (default: the config's, 5e-5)")
    parser.add_argument("--adversarial-weight", type=options.number(at_least=0),
                        help="adversarial: the weight of the discriminator's score in the generator's loss "
                             "(default: the config's, 4)")
    parser.add_argument("--input-noise", type=options.number(at_least=0),
                        help="noise on the past samples the network reads, in 16-bit steps (default: the config's)")
    parser.add_argument("--average-weights", type=options.MOMENTUM, metavar="MOMENTUM",
                        help="also keep a moving average of the weights with this momentum (e.g. 0.995), saved "
                             "each epoch as averaged-epoch-N.keras (default: the config's; 0: none)")
    parser.add_argument("--seed", type=options.SEED, default=0)
    parser.add_argument("--from", dest="initial_weights", type=Path,
                        help="start from this .keras WaveNet's weights (same sizes; older transposed upsampling is "
                             "converted), e.g. a run's best.keras")
    parser.set_defaults(run=run_train_synthesize)


def training_config(args):
    """The named config with the command line's changes."""
    import dataclasses

    from synthesize.config import SynthesizerConfig

    config = SynthesizerConfig.named(args.config)
    adversarial = {"discriminator_learning_rate": args.discriminator_learning_rate,
                   "adversarial_weight": args.adversarial_weight}
    if any(value is not None for value in adversarial.values()) and not config.discriminator_layers:
        raise ValueError("--discriminator-learning-rate and --adversarial-weight need --config adversarial")
    changes = {"learning_rate": args.learning_rate or None, "input_noise_lsb": args.input_noise,
               "weight_average_momentum": args.average_weights, **adversarial}
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    if args.output:
        config = dataclasses.replace(config, output=args.output, name=f"{config.name}-{args.output}")
    return config


def run_train_synthesize(args) -> int:
    config = training_config(args)  # before TensorFlow loads
    from synthesize.train import train

    train(args.root, args.run_dir, config, args.steps, args.steps_per_epoch, seed=args.seed,
          initial_weights=args.initial_weights)
    return 0


def add_evaluate(models) -> None:
    parser = models.add_parser(
        "synthesize", help="round-trip note F1 and log-mel distance on held-out MIDI",
        description="Render the first --seconds of --count held-out pieces with the WaveNet and, "
                    "for reference, with FluidSynth (TimGM6mb); transcribe both with the shipped "
                    "transcriber and score them against the MIDI (round-trip F1), and measure their "
                    "multi-resolution log-mel distance to FluidSynth with FluidR3_GM. Prints JSON.")
    parser.add_argument("midi_dir", type=Path)
    parser.add_argument("--split-csv", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--seconds", type=options.POSITIVE, default=10.0)
    parser.add_argument("--count", type=options.COUNT, default=20)
    parser.add_argument("--checkpoint", type=Path, help="a .keras synthesizer (default: the shipped one)")
    parser.add_argument("--transcriber", type=Path, help="a .keras transcriber (default: the shipped one)")
    add_arguments(parser, RenderSettings, skip=("seed",))  # --temperature, --level
    parser.add_argument("--page", type=Path, metavar="DIR",
                        help="also write a listening page there: each excerpt by FluidR3_GM, the WaveNet and "
                             "TimGM6mb as players side by side, with spectrograms (open DIR/index.html)")
    parser.set_defaults(run=run_evaluate_synthesize)


def run_evaluate_synthesize(args) -> int:
    from synthesize.evaluate import evaluate

    result = evaluate(args.midi_dir, args.split if args.split_csv else None, args.split_csv, args.seconds, args.count,
                      args.checkpoint, args.transcriber, args.temperature, args.output_rms_lsb, args.page)
    print(json.dumps(result, indent=2))
    return 0
