"""The `w2m2w compose`, `train compose` and `evaluate compose` commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from stages.cli import positive_float, positive_int


def add_compose(commands) -> None:
    parser = commands.add_parser(
        "compose", help="continue MIDI, or write new pieces (Music Transformer)",
        description="For each MIDI file under IN, keep its first --primer-seconds and continue it "
                    "with the Music Transformer, writing MIDI under OUT (mirroring the tree). "
                    "Without IN, write --count new pieces from nothing.")
    parser.add_argument("inputs", nargs="?", type=Path, help="a MIDI file or folder to continue")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="a .keras composer (default: the shipped one)")
    parser.add_argument("--primer-seconds", type=positive_float, default=10.0,
                        help="how much of each input to keep (default: 10)")
    parser.add_argument("--seconds", type=positive_float, default=30.0, help="length of the new music (default: 30)")
    parser.add_argument("--max-tokens", type=positive_int, default=4096, help="at most this many new events (default: 4096)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest events (0: all)")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default: 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same music")
    parser.add_argument("--count", type=int, default=1, help="pieces to write when there is no input")
    parser.add_argument("--no-grammar", dest="in_grammar", action="store_false",
                        help="sample from the model as it is, also events that encoded music never holds "
                             "(a key struck again while it sounds, a silent key released); by default "
                             "the model is renormalized over the events the grammar allows")
    parser.add_argument("--plot", action="store_true",
                        help="also write a piano roll (.png) beside each MIDI: the primer grey, the new music coloured")
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(run=run_compose)


def run_compose(args) -> int:
    from stages.cli import check_paths

    check_paths(args.inputs, args.out, {"composer": args.checkpoint})  # before TensorFlow loads
    from compose.stage import DEFAULT_CHECKPOINT, ComposeStage, Composer, write_new_pieces

    composer = Composer(args.checkpoint or DEFAULT_CHECKPOINT, seconds=args.seconds, max_tokens=args.max_tokens,
                        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                        in_grammar=args.in_grammar)
    if args.inputs is None:
        for path in write_new_pieces(composer, args.out, args.count, overwrite=args.overwrite, plot=args.plot):
            print(path)
        return 0
    report = ComposeStage(composer, args.primer_seconds, plot=args.plot).run(args.inputs, args.out, overwrite=args.overwrite)
    print(report.summary())
    return 0 if report.ok else 1


def add_train(models) -> None:
    composer = models.add_parser(
        "compose", help="the Music Transformer (or a baseline) on MIDI",
        description="Train a composer on random 512-token crops (default config) cut anywhere in the "
                    "train split's pieces, each encoded whole at time stretches 0.95, 1 and 1.05 "
                    "(first, with a progress bar), transposed by up to 3 semitones; validation NLL per "
                    "event after every epoch (best.keras is the lowest). SOURCE is a MIDI folder (with "
                    "--split-csv to choose the splits) or a `w2m2w maestro preprocess` output. Rerunning "
                    "the same command resumes. On a machine without TensorFlow or note-seq (an "
                    "accelerator under JAX), see scripts/encode_corpus.py and "
                    "scripts/train_composer_tokens.py.")
    composer.add_argument("source", type=Path, help="MIDI folder or preprocess output")
    composer.add_argument("run_dir", type=Path)
    composer.add_argument("--split-csv", type=Path, help="CSV assigning files to splits (ASAP's asap_split.csv)")
    composer.add_argument("--architecture", default="relative", choices=("relative", "absolute", "lstm"),
                          help="relative: Music Transformer; absolute, lstm: the baselines")
    composer.add_argument("--config", default="default", choices=("tiny", "default", "paper"))
    composer.add_argument("--steps", type=int, default=20_000,
                          help="optimizer steps in all; the learning rate decays (cosine) over them")
    composer.add_argument("--learning-rate", type=float, help="peak learning rate (default: the config's)")
    composer.add_argument("--sequence-length", type=int,
                          help="tokens per training crop, and the chunk length it is evaluated on (default: the config's)")
    composer.add_argument("--batch-size", type=int, help="crops per step (default: the config's)")
    composer.add_argument("--from", dest="initial_weights", type=Path,
                          help="start from this trained composer (its architecture and sizes, e.g. one grown "
                               "deeper by scripts/grow_composer.py; this run's training settings) instead of at random")
    composer.add_argument("--steps-per-epoch", type=int, default=250)
    composer.add_argument("--validation-pieces", type=int, default=24,
                          help="score this many validation pieces (evenly spread) after each epoch; 0: all")
    composer.add_argument("--seed", type=int, default=0)
    composer.add_argument("--keep-epochs", action="store_true",
                          help="keep every epoch's model in RUN_DIR/epochs/ (11 MB each), to average the last "
                               "ones with scripts/average_weights.py")
    composer.set_defaults(run=run_train_compose)


def run_train_compose(args) -> int:
    from compose.config import TRAINING_FIELDS, ComposerConfig
    from compose.data import even_spread, load_pieces
    from compose.train import train

    config = ComposerConfig.named(args.config, args.architecture)
    if args.initial_weights:
        import keras

        trained = keras.saving.load_model(args.initial_weights, compile=False).config
        config = dataclasses.replace(trained, **{field: getattr(config, field) for field in TRAINING_FIELDS})
    config = dataclasses.replace(config, decay_steps=args.steps,
                                 learning_rate=args.learning_rate or config.learning_rate,
                                 sequence_length=args.sequence_length or config.sequence_length,
                                 batch_size=args.batch_size or config.batch_size)
    pieces = {split: load_pieces(args.source, split, args.split_csv) for split in ("train", "validation")}
    if args.split_csv is None and not (args.source / "composition").is_dir():
        pieces["validation"] = pieces["train"][-max(1, len(pieces["train"]) // 10):]
        pieces["train"] = pieces["train"][: len(pieces["train"]) - len(pieces["validation"])] or pieces["validation"]
    validation = even_spread(pieces["validation"], args.validation_pieces)
    train(pieces["train"], validation, args.run_dir, config, args.steps, args.steps_per_epoch, args.seed,
          initial_weights=args.initial_weights, keep_epochs=args.keep_epochs)
    return 0


def add_evaluate(models) -> None:
    composer = models.add_parser(
        "compose", help="NLL per event on held-out MIDI",
        description="Mean negative log-likelihood per event (nats) of a composer on every piece "
                    "under MIDI_DIR (or one split of it with --split-csv), cut into non-overlapping "
                    "chunks of its training length (or of --chunk-length tokens), each scored on its own. "
                    "Prints JSON: nll_per_event, and nll_per_event_in_grammar, the model renormalized over "
                    "the events encoded music can hold (what `w2m2w compose` samples from).")
    composer.add_argument("midi_dir", type=Path)
    composer.add_argument("--checkpoint", type=Path, help="a .keras composer (default: the shipped one)")
    composer.add_argument("--split-csv", type=Path)
    composer.add_argument("--split", default="test")
    composer.add_argument("--chunk-length", type=int,
                          help="score chunks of this many tokens instead: 2048 as the Music Transformer paper "
                               "(a model attends at most its attention span back in each layer)")
    composer.add_argument("--max-pieces", type=int,
                          help="score at most this many pieces, spread evenly over the split (24: the "
                               "validation subset that `w2m2w train compose` selects on)")
    composer.set_defaults(run=run_evaluate_compose)


def run_evaluate_compose(args) -> int:
    import keras

    from compose.data import even_spread, load_pieces
    from compose.evaluate import nll_per_event
    from compose.stage import DEFAULT_CHECKPOINT

    model = keras.saving.load_model(args.checkpoint or DEFAULT_CHECKPOINT, compile=False)
    pieces = load_pieces(args.midi_dir, args.split if args.split_csv else None, args.split_csv)
    result = nll_per_event(model, even_spread(pieces, args.max_pieces), length=args.chunk_length)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0
