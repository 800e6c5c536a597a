"""`w2m2w`: the command line of wave2midi2wave.

Every command is a thin layer over a stage or a pipeline in the packages. The commands of each
package are defined in its `cli.py`; this module assembles them (argparse lives only there).
Exit status: 0 when everything succeeded, 1 when some files failed (the rest were written),
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
from pathlib import Path

from compose import cli as compose_cli
from flows import cli as flows_cli
from maestro import cli as maestro_cli
from stages.cli import REPO, cores
from synthesize import cli as synthesize_cli
from transcribe import cli as transcribe_cli

EXAMPLE_MIDI = REPO / "examples" / "midi"


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
    report = render_dataset(EXAMPLE_MIDI, dataset, workers=cores())
    print(report.summary())
    summary = preprocess.run(str(dataset), str(args.out / "tfrecords"), beam_args=args.beam_args)
    print(json.dumps(summary["splits"], indent=2))
    ok = report.ok and summary["failed_count"] == 0
    if DEFAULT_CHECKPOINT.exists():
        ok &= transcribe_and_score(Dataset.open(dataset), args.out / "transcription")
    return 0 if ok else 1


def transcribe_and_score(dataset, out: Path, checkpoint: Path | None = None) -> bool:
    """Transcribe a dataset's recordings, score them against its MIDI and draw piano rolls."""
    from stages.midi import apply_sustain, notes_from_sequence, read_note_sequence
    from stages.plots import plot_piano_rolls
    from transcribe.metrics import format_metrics, mean_metrics, transcription_metrics
    from transcribe.stage import TranscribeStage

    from transcribe.infer import DEFAULT_CHECKPOINT

    stage = TranscribeStage(checkpoint or DEFAULT_CHECKPOINT, notes_csv=True)
    report = stage.run(dataset.root, out)  # outputs mirror the dataset: <year>/<name>.midi
    print(report.summary())
    scores = []
    for record in dataset.records:
        midi = out / Path(record.audio_filename).with_suffix(".midi")
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

def version() -> str:
    try:
        return importlib.metadata.version("wave2midi2wave")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2m2w",
        description="wave2midi2wave: piano audio -> MIDI -> new music -> piano audio "
                    "(Hawthorne et al., ICLR 2019).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    maestro = commands.add_parser("maestro", help="the MAESTRO dataset: render, preprocess, retranscribe",
                                  description="Build and preprocess MAESTRO-layout datasets.")
    maestro_commands = maestro.add_subparsers(dest="maestro_command", required=True, metavar="COMMAND")
    maestro_cli.add_render(maestro_commands)
    maestro_cli.add_preprocess(maestro_commands)
    maestro_cli.add_retranscribe(maestro_commands)
    transcribe_cli.add_transcribe(commands)
    compose_cli.add_compose(commands)
    synthesize_cli.add_synthesize(commands)
    train = commands.add_parser("train", help="train a model: transcribe, compose, synthesize",
                                description="Train one of the models; rerunning a command resumes it.")
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    transcribe_cli.add_train(models)
    compose_cli.add_train(models)
    synthesize_cli.add_train(models)
    evaluate = commands.add_parser("evaluate", help="measure a model: transcribe, compose, synthesize",
                                   description="Measure one of the models on held-out data.")
    models = evaluate.add_subparsers(dest="model", required=True, metavar="MODEL")
    transcribe_cli.add_evaluate(models)
    compose_cli.add_evaluate(models)
    synthesize_cli.add_evaluate(models)
    transcribe_cli.add_benchmark(commands)
    flows_cli.add_full(commands)
    flows_cli.add_serve(commands)
    add_example(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    # No telemetry leaves the machine.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    passes_beam_options = getattr(args, "run", None) in (maestro_cli.run_preprocess, maestro_cli.run_retranscribe,
                                                         flows_cli.run_full, run_example)
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
