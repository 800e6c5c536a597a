"""What each composer job takes, declared once as frozen settings dataclasses (stages/settings.py):
`w2m2w` derives its options from the fields and its descriptions from the docstrings, and the job
functions that `w2m2w` names take the objects. Light to import: no TensorFlow."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stages import options
from stages.settings import Settings, argument, setting

TOKEN_FILE_SUFFIXES = (".npz", ".xz")
MAX_SECONDS_PER_EVENT = 1.0  # compose.tokens: a time shift is at most 100 steps of 10 ms
CONFIGS = ("tiny", "default", "paper")
ARCHITECTURES = ("relative", "absolute", "lstm")


def is_token_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(TOKEN_FILE_SUFFIXES)


@dataclasses.dataclass(frozen=True)
class ComposeFiles(Settings):
    """For each MIDI file under IN, continue its first --primer-seconds with the Music Transformer, writing
    the new music as MIDI under OUT (mirroring the tree). Without IN, write --count new pieces from nothing.
    --composer and --notes-per-second steer the music; they, and new pieces, use the shipped conditioned
    composer (compose/checkpoints/conditioned.*) unless --checkpoint names another (steering needs one
    trained with `w2m2w train compose --conditioning`)."""

    inputs: Path | None = argument(Path, "a MIDI file or folder to continue", nargs="?")
    out: Path = argument(Path, "output folder")
    checkpoint: Path | None = setting(None, Path, help="a .keras composer (default: the shipped one; steered or "
                                                       "from nothing, the shipped conditioned one)")
    primer_seconds: float = setting(10.0, options.POSITIVE, help="how much of each input to keep (default: 10)")
    infill: list[float] | None = setting(
        None, options.TIME, nargs=2, metavar=("START", "END"),
        help="rewrite the music between START and END seconds of each input so that it leads from the "
             "--primer-seconds before into the music after (the whole piece is written; --seconds does not apply)")
    candidates: int = setting(8, options.COUNT, help="with --infill: gaps sampled, the one under which the music "
                                                     "after is likeliest kept (default: 8)")
    count: int = setting(1, options.COUNT, help="pieces to write when there is no input")
    plot: bool = setting(False, help="also write a piano roll (.png) beside each MIDI (a primer grey, the new "
                                     "music coloured)")
    overwrite: bool = setting(False)

    def preflight(self, sampling) -> None:
        """The checks made before TensorFlow loads."""
        from stages.cli import check_paths

        if self.infill and self.inputs is None:
            raise ValueError("--infill needs input MIDI whose gap to fill")
        if self.infill and not self.infill[0] < self.infill[1]:
            raise ValueError(f"--infill START END needs START before END, not {self.infill}")
        if not self.infill and sampling.seconds > sampling.max_tokens * MAX_SECONDS_PER_EVENT:
            raise ValueError(f"--seconds {sampling.seconds:g} cannot be reached in --max-tokens {sampling.max_tokens} "
                             f"events (each moves time on by {MAX_SECONDS_PER_EVENT:g} s at most, and music takes "
                             f"several a second): raise --max-tokens")
        check_paths(self.inputs, self.out, {"composer": self.checkpoint})


@dataclasses.dataclass(frozen=True)
class ComposerTraining(Settings):
    """Train a composer on random crops (512 tokens in the default config, 2048 in the paper's) cut anywhere
    in the train split's pieces, each encoded whole, transposed by up to 3 semitones and stretched in time
    by 0.95-1.05; validation NLL per event after every epoch (best.keras is the lowest). SOURCE is a MIDI
    folder (with --split-csv to choose the splits), a `w2m2w maestro preprocess` output, or a token file
    (`w2m2w compose-tools encode`, with --validation), which needs neither note-seq nor TensorFlow: an
    accelerator machine trains from one under JAX. The budget is --steps or --minutes. Rerunning the same
    command resumes."""

    source: Path = argument(Path, "MIDI folder, preprocess output, or token file (.npz, .npz.xz)")
    run_dir: Path = argument(Path)
    split_csv: Path | None = setting(None, Path, help="CSV assigning files to splits (ASAP's asap_split.csv)")
    validation: Path | None = setting(None, Path, help="validation pieces as a token file (with a token-file SOURCE)")
    architecture: str = setting("relative", ARCHITECTURES,
                                help="relative: Music Transformer; absolute, lstm: the baselines")
    config: str = setting(
        "default", CONFIGS, help="paper: 6 layers of 512, 8 heads with their own relative embeddings, full "
                                 "attention over 2048 tokens, dropout 0.1, conditioned (an accelerator's work)")
    steps: int | None = setting(None, options.COUNT, exclusive="budget", help="optimizer steps in all; the "
                                "learning rate decays (cosine) over them (default: 20,000)")
    minutes: float | None = setting(None, options.POSITIVE, exclusive="budget",
                                    help="wall-clock budget instead; the learning rate decays over it")
    learning_rate: float | None = setting(None, options.LEARNING_RATE,
                                          help="peak learning rate (default: the config's)")
    sequence_length: int | None = setting(None, options.COUNT, help="tokens per training crop, and the chunk "
                                          "length it is evaluated on (default: the config's)")
    batch_size: int | None = setting(None, options.COUNT, help="crops per step (default: the config's)")
    attention_span: int | None = setting(None, options.COUNT_OR_ZERO, help="each position attends to the latest "
                                         "this many (0: all before it; default: the config's)")
    initial_weights: Path | None = setting(
        None, Path, "--from", "start from this trained composer (its architecture and sizes; this run's training "
                              "settings) instead of at random")
    grow_layers: int | None = setting(None, options.COUNT, help="first grow the --from model to this many blocks")
    widen: bool = setting(False, help="first double the --from model's width")
    conditioning: bool = setting(
        False, help="train with composer and note-density tokens at the start of each crop (a --from model "
                    "without them gets them added: its vocabulary padded)")
    labels_only: bool = setting(
        False, help="with --conditioning: train only the conditioning tokens' embeddings (prompt tuning), so that "
                    "music without labels is predicted exactly as by the --from model; judged on validation with "
                    "each piece's composer leading")
    label_dropout: float = setting(0.25, options.number(at_least=0, below=1),
                                   help="how often each conditioning token is left out, so that unconditioned "
                                        "sampling still works (default: 0.25)")
    steps_per_epoch: int = setting(250, options.COUNT)
    validation_pieces: int = setting(24, options.COUNT_OR_ZERO, help="score this many validation pieces (evenly "
                                     "spread) after each epoch; 0: all")
    validation_batch_size: int | None = setting(None, options.COUNT,
                                                help="chunks scored at once (default: 4096 tokens' worth)")
    average_from: float | None = setting(None, options.FRACTION, help="keep the mean of the weights of every "
                                         "epoch after this share of the budget (0-1) in RUN_DIR/mean.keras")
    mixed_precision: bool = setting(False, help="compute in bfloat16, keep weights in float32 (for an accelerator)")
    float16: bool = setting(False, help="also write the best model (best-float16.keras) and mean.keras with "
                                        "float16 weights, half the size, to travel")
    seed: int = setting(0, options.SEED)
    keep_epochs: bool = setting(False, help="keep every epoch's model in RUN_DIR/epochs/, to average the last "
                                            "ones with `w2m2w compose-tools average`")


@dataclasses.dataclass(frozen=True)
class ComposerEvaluation(Settings):
    """Mean negative log-likelihood per event (nats) of a composer on every piece under MIDI_DIR (or one
    split of it with --split-csv), cut into non-overlapping chunks of its training length (or of
    --chunk-length tokens), each scored on its own. Prints JSON: nll_per_event, the raw probability, with a
    bootstrap 95% interval over the pieces, and nll_per_event_in_grammar, the model renormalized over the
    events encoded music can hold (what `w2m2w compose` samples from)."""

    midi_dir: Path = argument(Path, "MIDI folder, or a token file (with --raw-only, no note-seq needed)")
    checkpoint: Path | None = setting(None, Path, help="a .keras composer (default: the shipped one)")
    split_csv: Path | None = setting(None, Path)
    split: str = setting("test")
    chunk_length: int | None = setting(None, options.COUNT, help="score chunks of this many tokens instead: 2048 "
                                       "as the Music Transformer paper (a model attends at most its attention "
                                       "span back in each layer)")
    max_pieces: int | None = setting(None, options.COUNT, help="score at most this many pieces, spread evenly over "
                                     "the split (24: the validation subset that `w2m2w train compose` selects on)")
    batch_size: int | None = setting(None, options.COUNT, help="chunks scored at once (default: 4096 tokens' worth)")
    raw_only: bool = setting(False, help="only the raw-probability figure, its log-probabilities gathered where "
                                         "the model runs (fast on an accelerator)")


class NewFile:
    """A tool's check: it never overwrites an existing OUT."""

    def preflight(self) -> None:
        if self.out.exists():
            raise ValueError(f"{self.out} exists: not overwriting it")


@dataclasses.dataclass(frozen=True)
class Growth(NewFile, Settings):
    """Grow a Music Transformer to --layers blocks; it predicts what it did."""

    model: Path = argument(Path)
    out: Path = argument(Path)
    layers: int | None = setting(None, options.COUNT, help="blocks of the grown model", required=True)


@dataclasses.dataclass(frozen=True)
class Widening(NewFile, Settings):
    """Double a Music Transformer's model and feed-forward width; it predicts what it did."""

    model: Path = argument(Path)
    out: Path = argument(Path)
    seed: int = setting(0, options.SEED, help="for the random splits of the weights")


@dataclasses.dataclass(frozen=True)
class Averaging(NewFile, Settings):
    """The mean of the weights of saved composers of one config (a run's last epochs, --keep-epochs),
    weights only."""

    out: Path = argument(Path)
    inputs: list[Path] = argument(Path, nargs="+")


@dataclasses.dataclass(frozen=True)
class Compaction(NewFile, Settings):
    """Save a composer's weights as float16 without optimizer state, e.g. to carry it back from an
    accelerator machine; it loads as float32."""

    model: Path = argument(Path)
    out: Path = argument(Path)


@dataclasses.dataclass(frozen=True)
class Encoding(NewFile, Settings):
    """Encode a split's pieces whole, with their composers, into a token file that `w2m2w train compose`
    reads without note-seq (an accelerator machine). An OUT ending in .xz is compressed with LZMA (a third
    of the size)."""

    source: Path = argument(Path, "a folder of MIDI (or a `w2m2w maestro preprocess` output)")
    out: Path = argument(Path)
    split_csv: Path | None = setting(None, Path, help="the split file choosing the pieces (ASAP's asap_split.csv)")
    split: str = setting("train")
    workers: int = setting(1, options.COUNT)
