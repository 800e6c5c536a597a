"""`w2m2w`: the command line of wave2midi2wave.

Every command is a thin layer over a stage or a pipeline in the packages; argparse lives here only.
Exit status: 0 when everything succeeded, 1 when some files failed (the rest were written),
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
SHARED_DATA = REPO.parent / "shared" / "data"
EXAMPLE_MIDI = REPO / "examples" / "midi"


def _cores() -> int:
    return os.cpu_count() or 1


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


# -- maestro render --------------------------------------------------------------------------

def add_render(commands) -> None:
    from maestro.metadata import SPLITS
    from maestro.soundfonts import TRAINING_SOUNDFONTS

    parser = commands.add_parser(
        "render", help="build a MAESTRO-v3-layout dataset from a folder of MIDI (FluidSynth)",
        description="Render every performance MIDI under MIDI_DIR with FluidSynth into a "
                    "MAESTRO-v3 layout under OUT_ROOT: <year>/<name>.midi + .wav, "
                    "maestro-v3.0.0.csv and .json. Re-running skips finished files.")
    parser.add_argument("midi_dir", nargs="?", type=Path,
                        help=f"folder of .mid/.midi files (default: {SHARED_DATA / 'asap'} "
                             "with its asap_split.csv)")
    parser.add_argument("out_root", type=Path, help="dataset folder to create or complete")
    parser.add_argument("--split-csv", type=Path,
                        help="CSV with split (train/validation/test) and midi_performance or "
                             "midi_filename columns, paths relative to the CSV; without it every "
                             "file goes to train")
    parser.add_argument("--splits", type=_csv_list, default=SPLITS,
                        help="render only these splits, comma-separated (default: all)")
    parser.add_argument("--soundfonts", type=_csv_list, default=TRAINING_SOUNDFONTS,
                        help="soundfont names or .sf2 paths; each file picks one at random "
                             "(default: %(default)s)")
    parser.add_argument("--sample-rate", type=int, default=16_000, help="Hz (default: 16000)")
    parser.add_argument("--augment-splits", type=_csv_list, default=("train",),
                        help="splits rendered with random gain, reverb, chorus and noise; "
                             "'none' for plain renders everywhere (default: train)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-file random choices")
    parser.add_argument("--year", type=int, default=2018,
                        help="year folder for files the split CSV gives no year (default: 2018)")
    parser.add_argument("--workers", type=int, default=_cores(), help="parallel renders (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="render again files already done")
    parser.set_defaults(run=run_render)


def run_render(args) -> int:
    from maestro.render import render_dataset

    midi_dir, split_csv = args.midi_dir, args.split_csv
    if midi_dir is None:
        midi_dir = SHARED_DATA / "asap"
        split_csv = split_csv or midi_dir / "asap_split.csv"
    augment = () if args.augment_splits == ("none",) else args.augment_splits
    report = render_dataset(midi_dir, args.out_root, split_csv, overwrite=args.overwrite,
                            workers=args.workers, soundfonts=args.soundfonts,
                            sample_rate_hz=args.sample_rate, augment_splits=augment,
                            splits=args.splits, seed=args.seed, year=args.year)
    print(report.summary())
    return 0 if report.ok else 1


# -- maestro preprocess ----------------------------------------------------------------------

def add_preprocess(commands) -> None:
    from maestro.metadata import SPLITS

    parser = commands.add_parser(
        "preprocess", help="Apache Beam: MAESTRO layout -> TFRecord shards per split",
        description="Cut every recording of a MAESTRO-layout ROOT into examples of at most "
                    "~20 s at points where no note sounds, with the sustain-extended notes of "
                    "each span (OUT/transcription), and write one example per performance "
                    "(OUT/composition), as TFRecord shards of tf.train.Example. Any argument "
                    "not listed here is a Beam pipeline option, e.g. --runner=DataflowRunner "
                    "--project=P --region=R --temp_location=gs://B/tmp; without --runner it "
                    "runs locally on all cores.")
    parser.add_argument("root", help="MAESTRO-layout dataset folder (any version's metadata)")
    parser.add_argument("out", help="output folder (local or gs://...)")
    parser.add_argument("--splits", type=_csv_list, default=SPLITS, help="splits to write (default: all)")
    parser.add_argument("--years", type=lambda t: tuple(int(y) for y in _csv_list(t)), default=(),
                        help="only these years, comma-separated")
    parser.add_argument("--composers", type=_csv_list, default=(),
                        help="only composers whose name contains one of these, comma-separated")
    parser.add_argument("--max-shards", type=int, default=16, help="shards per split at most (default: 16)")
    parser.add_argument("--min-seconds", type=float, default=5.0, help="shortest span (default: 5)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="longest span (default: 20)")
    parser.set_defaults(run=run_preprocess)


def run_preprocess(args) -> int:
    from maestro import preprocess

    config = preprocess.PreprocessConfig(
        splits=args.splits, years=args.years, composers=args.composers, max_shards=args.max_shards,
        min_seconds=args.min_seconds, max_seconds=args.max_seconds)
    summary = preprocess.run(args.root, args.out, config, args.beam_args)
    print(json.dumps(summary, indent=2))
    return 0 if summary["failed_count"] == 0 else 1


# -- transcribe ------------------------------------------------------------------------------

def add_transcribe(commands) -> None:
    parser = commands.add_parser(
        "transcribe", help="piano recordings -> MIDI (Onsets and Frames)",
        description="Transcribe every recording under IN (WAV, FLAC, MP3, OGG, ...; any sample "
                    "rate and channel count) to MIDI under OUT, mirroring the folder tree. "
                    "Finished files are skipped; a bad file is reported and the rest go on.")
    parser.add_argument("inputs", type=Path, help="a recording or a folder of recordings")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="a .keras transcriber (default: the shipped one)")
    parser.add_argument("--sequence", action="store_true", help="also write the NoteSequence (.pb)")
    parser.add_argument("--csv", action="store_true", help="also write the notes as CSV")
    parser.add_argument("--overwrite", action="store_true", help="transcribe again files already done")
    parser.set_defaults(run=run_transcribe)


def run_transcribe(args) -> int:
    from transcribe.infer import DEFAULT_CHECKPOINT
    from transcribe.stage import TranscribeStage

    stage = TranscribeStage(args.checkpoint or DEFAULT_CHECKPOINT, sequence=args.sequence, notes_csv=args.csv)
    report = stage.run(args.inputs, args.out, overwrite=args.overwrite)
    print(report.summary())
    return 0 if report.ok else 1


# -- compose -------------------------------------------------------------------------------

def add_compose(commands) -> None:
    parser = commands.add_parser(
        "compose", help="continue MIDI, or write new pieces (Music Transformer)",
        description="For each MIDI file under IN, keep its first --primer-seconds and continue it "
                    "with the Music Transformer, writing MIDI under OUT (mirroring the tree). "
                    "Without IN, write --count new pieces from nothing.")
    parser.add_argument("inputs", nargs="?", type=Path, help="a MIDI file or folder to continue")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="a .keras composer (default: the shipped one)")
    parser.add_argument("--primer-seconds", type=float, default=10.0, help="how much of each input to keep (default: 10)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the new music (default: 30)")
    parser.add_argument("--max-tokens", type=int, default=4096, help="at most this many new events (default: 4096)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest events (0: all)")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default: 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same music")
    parser.add_argument("--count", type=int, default=1, help="pieces to write when there is no input")
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(run=run_compose)


def run_compose(args) -> int:
    from compose.stage import DEFAULT_CHECKPOINT, ComposeStage, Composer
    from stages.contract import write_bytes_atomic

    composer = Composer(args.checkpoint or DEFAULT_CHECKPOINT, seconds=args.seconds, max_tokens=args.max_tokens,
                        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    if args.inputs is not None:
        report = ComposeStage(composer, args.primer_seconds).run(args.inputs, args.out, overwrite=args.overwrite)
        print(report.summary())
        return 0 if report.ok else 1
    from tqdm.auto import tqdm
    import tempfile

    from stages.midi import write_midi

    args.out.mkdir(parents=True, exist_ok=True)
    for index in tqdm(range(args.count), desc="compose", unit="piece"):
        target = args.out / f"piece-{args.seed:04d}-{index:03d}.midi"
        if target.exists() and not args.overwrite:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            write_midi(composer.continue_sequence(None, seed_offset=index), Path(scratch) / "piece.midi")
            write_bytes_atomic(target, (Path(scratch) / "piece.midi").read_bytes())
        print(target)
    return 0


# -- train -----------------------------------------------------------------------------------

def add_train(commands) -> None:
    parser = commands.add_parser("train", help="train a model: transcribe, compose",
                                 description="Train one of the models; each resumes a killed run.")
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    transcriber = models.add_parser(
        "transcribe", help="Onsets and Frames on `w2m2w maestro preprocess` TFRecords",
        description="Train Onsets and Frames on random crops of the transcription TFRecords "
                    "(train split), scoring validation spans with mir_eval after every epoch. "
                    "RUN_DIR gets best.keras (best validation note F1), last.keras, history.csv "
                    "and TensorBoard logs; rerunning the same command resumes.")
    transcriber.add_argument("tfrecords", type=Path, help="output folder of `w2m2w maestro preprocess`")
    transcriber.add_argument("run_dir", type=Path)
    transcriber.add_argument("--config", default="default", choices=("tiny", "default", "paper"))
    transcriber.add_argument("--steps", type=int, default=20_000, help="training steps in all (default: 20000)")
    transcriber.add_argument("--steps-per-epoch", type=int, default=250, help="steps between validations")
    transcriber.add_argument("--validation-spans", type=int, default=32, help="validation examples scored")
    transcriber.add_argument("--cache", type=Path, help="feature cache folder (default: TFRECORDS/transcription-cache)")
    transcriber.add_argument("--seed", type=int, default=0)
    transcriber.set_defaults(run=run_train_transcribe)
    composer = models.add_parser(
        "compose", help="the Music Transformer (or a baseline) on MIDI",
        description="Train a composer on random 512-token crops (default config) of the train "
                    "split, transposed by up to 3 semitones and stretched by up to 5%%; validation "
                    "NLL per event after every epoch (best.keras is the lowest). SOURCE is a MIDI "
                    "folder (with --split-csv to choose the splits) or a `w2m2w maestro "
                    "preprocess` output. Rerunning the same command resumes.")
    composer.add_argument("source", type=Path, help="MIDI folder or preprocess output")
    composer.add_argument("run_dir", type=Path)
    composer.add_argument("--split-csv", type=Path, help="CSV assigning files to splits (ASAP's asap_split.csv)")
    composer.add_argument("--architecture", default="relative", choices=("relative", "absolute", "lstm"),
                          help="relative: Music Transformer; absolute, lstm: the baselines")
    composer.add_argument("--config", default="default", choices=("tiny", "default", "paper"))
    composer.add_argument("--steps", type=int, default=20_000)
    composer.add_argument("--steps-per-epoch", type=int, default=250)
    composer.add_argument("--seed", type=int, default=0)
    composer.set_defaults(run=run_train_compose)


def run_train_compose(args) -> int:
    from compose.config import ComposerConfig
    from compose.data import load_pieces
    from compose.train import train

    config = ComposerConfig.named(args.config, args.architecture)
    pieces = {split: load_pieces(args.source, split, args.split_csv) for split in ("train", "validation")}
    if args.split_csv is None and not (args.source / "composition").is_dir():
        pieces["validation"] = pieces["train"][-max(1, len(pieces["train"]) // 10):]
        pieces["train"] = pieces["train"][: len(pieces["train"]) - len(pieces["validation"])] or pieces["validation"]
    train(pieces["train"], pieces["validation"], args.run_dir, config, args.steps, args.steps_per_epoch, args.seed)
    return 0


def run_train_transcribe(args) -> int:
    from transcribe.config import TranscriberConfig
    from transcribe.train import train

    train(args.tfrecords, args.run_dir, TranscriberConfig.named(args.config), args.steps, args.steps_per_epoch,
          args.validation_spans, args.cache, cache_workers=_cores(), seed=args.seed)
    return 0


# -- evaluate --------------------------------------------------------------------------------

def add_evaluate(commands) -> None:
    parser = commands.add_parser("evaluate", help="measure a model: transcribe, compose",
                                 description="Measure one of the models on held-out data.")
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    transcriber = models.add_parser(
        "transcribe", help="mir_eval metrics on a MAESTRO-layout split",
        description="Transcribe every recording of a split of a MAESTRO-layout ROOT and score it "
                    "against its MIDI (sustain applied, cut to the audio) with mir_eval, per "
                    "piece, then averaged over pieces (the MAESTRO paper's protocol). Prints the "
                    "mean as JSON; --out writes the per-piece figures too.")
    transcriber.add_argument("root", type=Path, help="MAESTRO-layout dataset")
    transcriber.add_argument("--split", default="test")
    transcriber.add_argument("--checkpoint", type=Path, help="a .keras transcriber (default: the shipped one)")
    transcriber.add_argument("--excerpt-seconds", type=float, help="score only the first N seconds of each piece")
    transcriber.add_argument("--limit", type=int, help="only the first N pieces")
    transcriber.add_argument("--out", type=Path, help="write the full evaluation (JSON) here")
    transcriber.set_defaults(run=run_evaluate_transcribe)
    composer = models.add_parser(
        "compose", help="NLL per event on held-out MIDI",
        description="Mean negative log-likelihood per event (nats) of a composer on every piece "
                    "under MIDI_DIR (or one split of it with --split-csv), cut into non-overlapping "
                    "chunks of its training length. Prints JSON.")
    composer.add_argument("midi_dir", type=Path)
    composer.add_argument("--checkpoint", type=Path, help="a .keras composer (default: the shipped one)")
    composer.add_argument("--split-csv", type=Path)
    composer.add_argument("--split", default="test")
    composer.set_defaults(run=run_evaluate_compose)


def run_evaluate_compose(args) -> int:
    import keras

    from compose.data import load_pieces
    from compose.evaluate import nll_per_event
    from compose.stage import DEFAULT_CHECKPOINT

    model = keras.saving.load_model(args.checkpoint or DEFAULT_CHECKPOINT, compile=False)
    pieces = load_pieces(args.midi_dir, args.split if args.split_csv else None, args.split_csv)
    result = nll_per_event(model, pieces)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


def run_evaluate_transcribe(args) -> int:
    import dataclasses

    from transcribe.evaluate import evaluate
    from transcribe.infer import DEFAULT_CHECKPOINT, Transcriber
    from transcribe.metrics import format_metrics

    result = evaluate(Transcriber.load(args.checkpoint or DEFAULT_CHECKPOINT), args.root, args.split,
                      args.excerpt_seconds, args.limit)
    print(format_metrics(result.mean), file=sys.stderr)
    summary = {"split": args.split, "pieces": len(result.pieces), "audio_seconds": round(result.audio_seconds, 1),
               "excerpt_seconds": args.excerpt_seconds, **{k: round(v, 4) for k, v in result.mean.items()}}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**summary, "per_piece": dataclasses.asdict(result)["pieces"]}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


# -- example ---------------------------------------------------------------------------------

def add_example(commands) -> None:
    parser = commands.add_parser(
        "example", help="run the main job on the bundled example",
        description="Render the bundled example MIDI (examples/midi) into a small MAESTRO "
                    "layout, preprocess it into TFRecords, transcribe the recording back to MIDI "
                    "with the shipped transcriber and score it against the original, all under "
                    "OUT (default: runs/example).")
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "runs" / "example")
    parser.set_defaults(run=run_example)


def run_example(args) -> int:
    from maestro import preprocess
    from maestro.metadata import Dataset
    from maestro.render import render_dataset
    from transcribe.infer import DEFAULT_CHECKPOINT

    dataset = args.out / "dataset"
    report = render_dataset(EXAMPLE_MIDI, dataset, workers=_cores())
    print(report.summary())
    summary = preprocess.run(str(dataset), str(args.out / "tfrecords"), beam_args=args.beam_args)
    print(json.dumps(summary["splits"], indent=2))
    ok = report.ok and summary["failed_count"] == 0
    if DEFAULT_CHECKPOINT.exists():
        ok &= transcribe_and_score(Dataset.open(dataset), args.out / "transcription")
    return 0 if ok else 1


def transcribe_and_score(dataset, out: Path) -> bool:
    """Transcribe a dataset's recordings, score them against its MIDI and draw piano rolls."""
    from stages.midi import apply_sustain, notes_from_sequence, read_note_sequence
    from stages.plots import plot_piano_rolls
    from transcribe.metrics import format_metrics, mean_metrics, transcription_metrics
    from transcribe.stage import TranscribeStage

    stage = TranscribeStage(notes_csv=True)
    report = stage.run([dataset.audio_path(r) for r in dataset.records], out)
    print(report.summary())
    scores = []
    for record in dataset.records:
        midi = out / Path(record.audio_filename).with_suffix(".midi").name
        if not midi.exists():
            continue
        estimate = notes_from_sequence(read_note_sequence(midi))
        reference = notes_from_sequence(apply_sustain(read_note_sequence(dataset.midi_path(record))))
        scores.append(transcription_metrics(reference, estimate))
        picture = plot_piano_rolls(midi.with_suffix(".png"), reference, estimate, title=Path(record.audio_filename).stem)
        print(f"{midi}  (piano roll: {picture})")
    if scores:
        print(format_metrics(mean_metrics(scores)))
    return report.ok


# -- entry -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2m2w",
        description="wave2midi2wave: piano audio -> MIDI -> new music -> piano audio "
                    "(Hawthorne et al., ICLR 2019).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    maestro = commands.add_parser("maestro", help="the MAESTRO dataset: render, preprocess",
                                  description="Build and preprocess MAESTRO-layout datasets.")
    maestro_commands = maestro.add_subparsers(dest="maestro_command", required=True, metavar="COMMAND")
    add_render(maestro_commands)
    add_preprocess(maestro_commands)
    add_transcribe(commands)
    add_compose(commands)
    add_train(commands)
    add_evaluate(commands)
    add_example(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    passes_beam_options = getattr(args, "run", None) in (run_preprocess, run_example)
    if extra and not passes_beam_options:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # Beam's and TensorFlow's start-up chatter hides what matters
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"w2m2w: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
