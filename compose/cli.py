"""The `w2m2w compose`, `compose-tools`, `train compose` and `evaluate compose` commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from compose.config import SamplingSettings
from stages import options
from stages.checkpoints import checkpoint_for
from stages.settings import add_arguments, from_namespace

TOKEN_FILE_SUFFIXES = (".npz", ".xz")
MAX_SECONDS_PER_EVENT = 1.0  # compose.tokens: a time shift is at most 100 steps of 10 ms


def add_compose(commands) -> None:
    parser = commands.add_parser(
        "compose", help="continue MIDI, or write new pieces (Music Transformer)",
        description="For each MIDI file under IN, continue its first --primer-seconds with the Music "
                    "Transformer, writing the new music as MIDI under OUT (mirroring the tree). "
                    "Without IN, write --count new pieces from nothing. --composer and --notes-per-second "
                    "steer the music; they, and new pieces, use the shipped conditioned composer "
                    "(compose/checkpoints/conditioned.*) unless --checkpoint names another (steering needs one "
                    "trained with `w2m2w train compose --conditioning`).")
    parser.add_argument("inputs", nargs="?", type=Path, help="a MIDI file or folder to continue")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--checkpoint", type=Path,
                        help="a .keras composer (default: the shipped one; steered or from nothing, the shipped "
                             "conditioned one)")
    parser.add_argument("--primer-seconds", type=options.POSITIVE, default=10.0,
                        help="how much of each input to keep (default: 10)")
    add_arguments(parser, SamplingSettings)
    parser.add_argument("--infill", type=options.TIME, nargs=2, metavar=("START", "END"),
                        help="rewrite the music between START and END seconds of each input so that it leads "
                             "from the --primer-seconds before into the music after (the whole piece is written; "
                             "--seconds does not apply)")
    parser.add_argument("--candidates", type=options.COUNT, default=8,
                        help="with --infill: gaps sampled, the one under which the music after is likeliest kept "
                             "(default: 8)")
    parser.add_argument("--count", type=options.COUNT, default=1, help="pieces to write when there is no input")
    parser.add_argument("--plot", action="store_true",
                        help="also write a piano roll (.png) beside each MIDI (a primer grey, the new music coloured)")
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(run=run_compose)
    add_tools(commands)


def run_compose(args) -> int:
    from stages.cli import check_paths

    if args.infill and args.inputs is None:
        raise ValueError("--infill needs input MIDI whose gap to fill")
    if args.infill and not args.infill[0] < args.infill[1]:
        raise ValueError(f"--infill START END needs START before END, not {args.infill}")
    if not args.infill and args.seconds > args.max_tokens * MAX_SECONDS_PER_EVENT:
        raise ValueError(f"--seconds {args.seconds:g} cannot be reached in --max-tokens {args.max_tokens} events "
                         f"(each moves time on by {MAX_SECONDS_PER_EVENT:g} s at most, and music takes several a "
                         f"second): raise --max-tokens")
    sampling = from_namespace(SamplingSettings, args)
    check_paths(args.inputs, args.out, {"composer": args.checkpoint})  # before TensorFlow loads
    from compose.composer import shipped_checkpoint
    from compose.stage import Composer, ComposeStage, write_new_pieces

    checkpoint = args.checkpoint or shipped_checkpoint(args.composer, args.notes_per_second,
                                                       from_nothing=args.inputs is None)
    composer = Composer(checkpoint, sampling)
    if args.inputs is None:
        for path in write_new_pieces(composer, args.out, args.count, overwrite=args.overwrite, plot=args.plot):
            print(path)
        return 0
    stage = ComposeStage(composer, args.primer_seconds, plot=args.plot, infill=args.infill,
                         candidates=args.candidates)
    report = stage.run(args.inputs, args.out, overwrite=args.overwrite)
    print(report.summary())
    return 0 if report.ok else 1


# -- compose-tools ---------------------------------------------------------------------------

def add_tools(commands) -> None:
    parser = commands.add_parser(
        "compose-tools", help="composer checkpoints and corpora: grow, widen, average, compact, encode",
        description="Change a trained composer without changing what it computes (grow, widen), average "
                    "saved composers, store one in float16, or encode MIDI as a token file for training "
                    "where note-seq is not installed. None overwrites an existing OUT.")
    tools = parser.add_subparsers(dest="tool", required=True, metavar="TOOL")
    grow = tools.add_parser("grow", help="more blocks, each new one a silent copy of the one before",
                            description="Grow a Music Transformer to --layers blocks; it predicts what it did.")
    grow.add_argument("model", type=Path)
    grow.add_argument("out", type=Path)
    grow.add_argument("--layers", type=options.COUNT, required=True, help="blocks of the grown model")
    widen = tools.add_parser("widen", help="twice the width, every unit duplicated",
                             description="Double a Music Transformer's model and feed-forward width; it "
                                         "predicts what it did.")
    widen.add_argument("model", type=Path)
    widen.add_argument("out", type=Path)
    widen.add_argument("--seed", type=options.SEED, default=0, help="for the random splits of the weights")
    average = tools.add_parser("average", help="the mean of several saved composers' weights",
                               description="The mean of the weights of saved composers of one config (a run's "
                                           "last epochs, --keep-epochs), weights only.")
    average.add_argument("out", type=Path)
    average.add_argument("inputs", type=Path, nargs="+")
    compact = tools.add_parser("compact", help="a copy with float16 weights and no optimizer (half the size)",
                               description="Save a composer's weights as float16 without optimizer state, e.g. to "
                                           "carry it back from an accelerator machine; it loads as float32.")
    compact.add_argument("model", type=Path)
    compact.add_argument("out", type=Path)
    encode = tools.add_parser("encode", help="MIDI pieces -> a token file (.npz or .npz.xz)",
                              description="Encode a split's pieces whole, with their composers, into a token file "
                                          "that `w2m2w train compose` reads without note-seq (an accelerator machine). "
                                          "An OUT ending in .xz is compressed with LZMA (a third of the size).")
    encode.add_argument("source", type=Path, help="a folder of MIDI (or a `w2m2w maestro preprocess` output)")
    encode.add_argument("out", type=Path)
    encode.add_argument("--split-csv", type=Path, help="the split file choosing the pieces (ASAP's asap_split.csv)")
    encode.add_argument("--split", default="train")
    encode.add_argument("--workers", type=options.COUNT, default=1)
    parser.set_defaults(run=run_tools)


def run_tools(args) -> int:
    out = args.out
    if out.exists():
        raise ValueError(f"{out} exists: not overwriting it")
    if args.tool == "encode":
        from compose.data import encode_corpus

        corpus = encode_corpus(args.source, args.split, args.split_csv, args.workers)
        corpus.save(out)
        print(f"{len(corpus.pieces)} pieces, {sum(map(len, corpus.pieces)):,} tokens -> {out} "
              f"({out.stat().st_size / 2**20:.1f} MiB)")
        return 0
    import keras

    from compose.weights import average, save_weights_only
    from stages.contract import save_model_atomic

    if args.tool == "average":
        if out in args.inputs:
            raise ValueError(f"{out} is one of the inputs: not overwriting it")
        models = [keras.saving.load_model(path, compile=False) for path in args.inputs]
        save_weights_only(models[-1], out, average(models))
        print(f"{out}: the mean of {len(models)} models")
        return 0
    model = keras.saving.load_model(args.model, compile=False)
    if args.tool == "compact":
        save_weights_only(model, out, float16=True)
    else:
        from compose.growth import grow, widen

        changed = grow(model, args.layers) if args.tool == "grow" else widen(model, args.seed)
        save_model_atomic(changed, out)
        model = changed
    c = model.config
    print(f"{out}: {c.num_layers} blocks of width {c.model_dim}, feed-forward {c.ff_dim}, "
          f"{model.count_params():,} parameters ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


# -- train compose ---------------------------------------------------------------------------

def add_train(models) -> None:
    composer = models.add_parser(
        "compose", help="the Music Transformer (or a baseline) on MIDI or a token file",
        description="Train a composer on random crops (512 tokens in the default config, 2048 in the paper's) "
                    "cut anywhere in the train split's pieces, each encoded whole, transposed by up to 3 "
                    "semitones and stretched in time by 0.95-1.05; validation NLL per event after every epoch "
                    "(best.keras is the lowest). SOURCE is a MIDI folder (with --split-csv to choose the "
                    "splits), a `w2m2w maestro preprocess` output, or a token file (`w2m2w compose-tools "
                    "encode`, with --validation), which needs neither note-seq nor TensorFlow: an accelerator "
                    "machine trains from one under JAX. The budget is --steps or --minutes. Rerunning the "
                    "same command resumes.")
    composer.add_argument("source", type=Path, help="MIDI folder, preprocess output, or token file (.npz, .npz.xz)")
    composer.add_argument("run_dir", type=Path)
    composer.add_argument("--split-csv", type=Path, help="CSV assigning files to splits (ASAP's asap_split.csv)")
    composer.add_argument("--validation", type=Path,
                          help="validation pieces as a token file (with a token-file SOURCE)")
    composer.add_argument("--architecture", default="relative", choices=("relative", "absolute", "lstm"),
                          help="relative: Music Transformer; absolute, lstm: the baselines")
    composer.add_argument("--config", default="default", choices=("tiny", "default", "paper"),
                          help="paper: 6 layers of 512, 8 heads with their own relative embeddings, full attention "
                               "over 2048 tokens, dropout 0.1, conditioned (an accelerator's work)")
    budget = composer.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=options.COUNT,
                        help="optimizer steps in all; the learning rate decays (cosine) over them "
                                                  "(default: 20,000)")
    budget.add_argument("--minutes", type=options.POSITIVE,
                        help="wall-clock budget instead; the learning rate decays over it")
    composer.add_argument("--learning-rate", type=options.LEARNING_RATE,
                          help="peak learning rate (default: the config's)")
    composer.add_argument("--sequence-length", type=options.COUNT,
                          help="tokens per training crop, and the chunk length it is evaluated on "
                               "(default: the config's)")
    composer.add_argument("--batch-size", type=options.COUNT, help="crops per step (default: the config's)")
    composer.add_argument("--attention-span", type=options.COUNT_OR_ZERO,
                          help="each position attends to the latest this many (0: all before it; "
                               "default: the config's)")
    composer.add_argument("--from", dest="initial_weights", type=Path,
                          help="start from this trained composer (its architecture and sizes; this run's training "
                               "settings) instead of at random")
    composer.add_argument("--grow-layers", type=options.COUNT, help="first grow the --from model to this many blocks")
    composer.add_argument("--widen", action="store_true", help="first double the --from model's width")
    composer.add_argument("--conditioning", action="store_true",
                          help="train with composer and note-density tokens at the start of each crop (a --from "
                               "model without them gets them added: its vocabulary padded)")
    composer.add_argument("--labels-only", action="store_true",
                          help="with --conditioning: train only the conditioning tokens' embeddings (prompt "
                               "tuning), so that music without labels is predicted exactly as by the --from "
                               "model; judged on validation with each piece's composer leading")
    composer.add_argument("--label-dropout", type=options.number(at_least=0, below=1), default=0.25,
                          help="how often each conditioning token is left out, so that unconditioned sampling "
                               "still works (default: 0.25)")
    composer.add_argument("--steps-per-epoch", type=options.COUNT, default=250)
    composer.add_argument("--validation-pieces", type=options.COUNT_OR_ZERO, default=24,
                          help="score this many validation pieces (evenly spread) after each epoch; 0: all")
    composer.add_argument("--validation-batch-size", type=options.COUNT,
                          help="chunks scored at once (default: 4096 tokens' worth)")
    composer.add_argument("--average-from", type=options.FRACTION,
                          help="keep the mean of the weights of every epoch after this share of the budget (0-1) "
                               "in RUN_DIR/mean.keras")
    composer.add_argument("--mixed-precision", action="store_true",
                          help="compute in bfloat16, keep weights in float32 (for an accelerator)")
    composer.add_argument("--float16", action="store_true",
                          help="also write the best model (best-float16.keras) and mean.keras with float16 weights, "
                               "half the size, to travel")
    composer.add_argument("--seed", type=options.SEED, default=0)
    composer.add_argument("--keep-epochs", action="store_true",
                          help="keep every epoch's model in RUN_DIR/epochs/, to average the last ones with "
                               "`w2m2w compose-tools average`")
    composer.set_defaults(run=run_train_compose)


def run_train_compose(args) -> int:
    from compose.config import TRAINING_FIELDS, ComposerConfig

    if args.mixed_precision:
        import keras

        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    config = ComposerConfig.named(args.config, args.architecture)
    initial = args.initial_weights
    if initial:
        from compose.growth import starting_point

        initial = starting_point(initial, args.run_dir, args.grow_layers, args.widen, args.conditioning, args.seed)
        import keras

        trained = keras.saving.load_model(initial, compile=False).config
        config = dataclasses.replace(trained, **{field: getattr(config, field) for field in TRAINING_FIELDS})
    elif args.grow_layers or args.widen:
        raise ValueError("--grow-layers and --widen change a trained composer: give it with --from")
    elif args.conditioning and not config.conditioned:
        from compose.vocabulary import CONDITIONED_VOCAB_SIZE

        config = dataclasses.replace(config, vocab_size=CONDITIONED_VOCAB_SIZE)
    steps = args.steps if args.minutes is None else None
    steps = steps or (20_000 if args.minutes is None else None)
    changes = dict(learning_rate=args.learning_rate or config.learning_rate,
                   sequence_length=args.sequence_length or config.sequence_length,
                   batch_size=args.batch_size or config.batch_size)
    if steps:
        changes["decay_steps"] = steps
    if args.attention_span is not None:
        changes["attention_span"] = args.attention_span
    config = dataclasses.replace(config, **changes)

    if args.labels_only and not (args.conditioning and args.initial_weights):
        raise ValueError("--labels-only trains the labels of a trained composer: give --conditioning and --from")
    train_pieces, validation, composers, validation_composers = _training_data(args)
    from compose.corpus import even_spread
    from compose.train import train

    train(train_pieces, even_spread(validation, args.validation_pieces), args.run_dir, config, steps,
          args.steps_per_epoch, args.seed, initial_weights=initial, keep_epochs=args.keep_epochs, minutes=args.minutes,
          composers=composers, label_dropout=args.label_dropout, average_from=args.average_from,
          validation_batch_size=args.validation_batch_size, float16=args.float16, labels_only=args.labels_only,
          validation_composers=even_spread(validation_composers, args.validation_pieces))
    return 0


def _training_data(args):
    """(training pieces as tokens, validation pieces as tokens, each one's composer index: training's,
    validation's) from a token file or MIDI."""
    from compose.conditioning import composer_index

    source = args.source
    if source.is_file() and source.name.endswith(TOKEN_FILE_SUFFIXES):
        from compose.corpus import TokenFile

        corpus = TokenFile.load(source).unstretched()
        if args.validation:
            held_out = TokenFile.load(args.validation).unstretched()
        else:  # the last tenth of the pieces
            held = max(1, len(corpus.pieces) // 10)
            held_out = dataclasses.replace(corpus, pieces=corpus.pieces[-held:], composers=corpus.composers[-held:])
            corpus = dataclasses.replace(corpus, pieces=corpus.pieces[:-held] or held_out.pieces,
                                         composers=corpus.composers[:-held] or held_out.composers)
        return (corpus.pieces, held_out.pieces, [composer_index(c) for c in corpus.composers],
                [composer_index(c) for c in held_out.composers])

    from compose.data import encode_pieces, load_labelled_pieces

    pieces = {split: load_labelled_pieces(source, split, args.split_csv) for split in ("train", "validation")}
    (train_pieces, composers), (validation, validation_composers) = pieces["train"], pieces["validation"]
    if args.split_csv is None and not (source / "composition").is_dir():  # one folder: hold out its last tenth
        held = max(1, len(train_pieces) // 10)
        validation, validation_composers = train_pieces[-held:], composers[-held:]
        train_pieces, composers = (train_pieces[:-held], composers[:-held]) if len(train_pieces) > held else (
            validation, validation_composers)
    with_notes = [i for i, p in enumerate(train_pieces) if p.notes]
    validation_with_notes = [i for i, p in enumerate(validation) if p.notes]
    return (encode_pieces([train_pieces[i] for i in with_notes], progress=True),
            encode_pieces([validation[i] for i in validation_with_notes]),
            [composer_index(composers[i]) for i in with_notes],
            [composer_index(validation_composers[i]) for i in validation_with_notes])


# -- evaluate compose ------------------------------------------------------------------------

def add_evaluate(models) -> None:
    composer = models.add_parser(
        "compose", help="NLL per event on held-out MIDI",
        description="Mean negative log-likelihood per event (nats) of a composer on every piece "
                    "under MIDI_DIR (or one split of it with --split-csv), cut into non-overlapping "
                    "chunks of its training length (or of --chunk-length tokens), each scored on its own. "
                    "Prints JSON: nll_per_event, the raw probability, with a bootstrap 95%% interval over "
                    "the pieces, and nll_per_event_in_grammar, the model renormalized over the events "
                    "encoded music can hold (what `w2m2w compose` samples from).")
    composer.add_argument("midi_dir", type=Path,
                          help="MIDI folder, or a token file (with --raw-only, no note-seq needed)")
    composer.add_argument("--checkpoint", type=Path, help="a .keras composer (default: the shipped one)")
    composer.add_argument("--split-csv", type=Path)
    composer.add_argument("--split", default="test")
    composer.add_argument("--chunk-length", type=options.COUNT,
                          help="score chunks of this many tokens instead: 2048 as the Music Transformer paper "
                               "(a model attends at most its attention span back in each layer)")
    composer.add_argument("--max-pieces", type=options.COUNT,
                          help="score at most this many pieces, spread evenly over the split (24: the "
                               "validation subset that `w2m2w train compose` selects on)")
    composer.add_argument("--batch-size", type=options.COUNT,
                          help="chunks scored at once (default: 4096 tokens' worth)")
    composer.add_argument("--raw-only", action="store_true",
                          help="only the raw-probability figure, its log-probabilities gathered where the model "
                               "runs (fast on an accelerator)")
    composer.set_defaults(run=run_evaluate_compose)


def run_evaluate_compose(args) -> int:
    import keras

    from compose.corpus import TokenFile, even_spread
    from compose.evaluate import bootstrap_interval, token_nll_per_event
    from compose.model import MusicTransformer  # noqa: F401  (registers the composers' classes for loading)

    if not (args.midi_dir.is_file() and args.midi_dir.name.endswith(TOKEN_FILE_SUFFIXES)):
        from compose.data import load_pieces, piece_tokens

    model = keras.saving.load_model(checkpoint_for("compose", args.checkpoint), compile=False)
    if args.midi_dir.is_file() and args.midi_dir.name.endswith(TOKEN_FILE_SUFFIXES):  # no note-seq needed (--raw-only)
        pieces = even_spread(TokenFile.load(args.midi_dir).unstretched().pieces, args.max_pieces)
    else:
        split = args.split if args.split_csv else None
        chosen = even_spread(load_pieces(args.midi_dir, split, args.split_csv), args.max_pieces)
        pieces = [piece_tokens(p) for p in chosen if p.notes]
    result = token_nll_per_event(model, pieces, args.chunk_length, args.batch_size, in_grammar=not args.raw_only,
                                 per_piece=True)
    interval = bootstrap_interval(result.pop("piece_nll"), result.pop("piece_events"))
    result.pop("piece_nll_in_grammar", None)
    result = {**result, "nll_per_event_interval_95": list(interval), "pieces": len(pieces)}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else
                      [round(x, 4) for x in v] if isinstance(v, list) else v for k, v in result.items()}))
    return 0
