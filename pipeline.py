"""`w2m2w`: the command line of wave2midi2wave.

Every command is a thin layer over a stage or a pipeline in the packages. The commands of each
package are defined in its `cli.py`; this module assembles them (argparse lives only there).
Exit status: 0 when everything succeeded, 1 when some files failed (the rest were written),
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from batch import cli as batch_cli
from batch.example import Example
from compose import cli as compose_cli
from flows import cli as flows_cli
from maestro import cli as maestro_cli
from stages import options, quiet
from stages.cli import add_command
from synthesize import cli as synthesize_cli
from transcribe import cli as transcribe_cli

# -- ship ------------------------------------------------------------------------------------

def add_ship(commands) -> None:
    parser = commands.add_parser(
        "ship", help="a training run's best model -> a stage's checkpoint, record and model card",
        description="Save a training run's best.keras (or --model) without its optimizer state as "
                    "<stage>/checkpoints/NAME.keras, with NAME.json beside it (where it came from, the epoch it "
                    "was selected at, its validation figures, the commands that made it) and its model card "
                    "NAME.md. For the transcriber, `w2m2w tune transcribe --apply` and `w2m2w train rescorer "
                    "--apply` follow.")
    parser.add_argument("stage", choices=("compose", "synthesize", "transcribe"))
    parser.add_argument("run_dir", type=Path, help="the training run (best.keras, history.csv)")
    parser.add_argument("--name", default="default", help="checkpoint name (default: default)")
    parser.add_argument("--checkpoints", type=Path, help="folder to ship into (default: the stage's checkpoints/)")
    parser.add_argument("--trained-with", action="append", default=[], metavar="COMMAND",
                        help="a command that trained the run, recorded in order (repeatable); this ship command "
                             "is recorded after them")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change an inference setting in the shipped config, e.g. sampling_temperature=0.05 "
                             "(chosen on validation; repeatable)")
    parser.add_argument("--model", type=Path, help="ship this saved model of the run instead of best.keras "
                        "(one picked on another validation figure, or averaged), with --epoch and --selected-on")
    parser.add_argument("--epoch", type=options.COUNT, help="the epoch (1-based) --model was saved at")
    parser.add_argument("--selected-on", help="what --model was picked on, for the record")
    parser.add_argument("--validation", action="append", default=[], metavar="NAME=VALUE",
                        help="validation figures --model reached where history.csv lacks them, e.g. "
                             "val_nll_per_event=2.49 (repeatable)")
    parser.set_defaults(run=run_ship)


def assignments(items: list[str], option: str) -> dict:
    """["a=1", "b=0.5"] -> {"a": 1, "b": 0.5} (values read as JSON)."""
    pairs = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"{option} takes NAME=VALUE, not {item!r}")
        try:
            pairs[name] = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{option} {item!r}: the value is not a number or JSON ({error})") from error
    return pairs


# The module of each stage's shipped network (its build_model; importing it registers its Keras classes).
MODEL_MODULES = {"compose": "compose.model", "synthesize": "synthesize.model",
                 "transcribe": "transcribe.onsets_frames.model"}


def run_ship(args) -> int:
    import importlib

    from stages.checkpoints import companion, shipped_checkpoint
    from stages.contract import content_id
    from stages.training.ship import ship

    model_module = importlib.import_module(MODEL_MODULES[args.stage])  # registers the stage's Keras classes
    folder = args.checkpoints or shipped_checkpoint(args.stage).parent
    target = folder / f"{args.name}.keras"
    ship(args.stage, args.run_dir, target, model_module.build_model, model=args.model, epoch=args.epoch,
         selected_on=args.selected_on, validation=assignments(args.validation, "--validation"),
         settings=assignments(args.set, "--set"), trained_with=[*args.trained_with, args.command_line])
    print(target, content_id(target))
    print(companion(target, "card"))
    return 0


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
    maestro = commands.add_parser("maestro",
                                  help="the MAESTRO dataset: render, preprocess, retranscribe, fetch-samples",
                                  description="Build and preprocess MAESTRO-layout datasets.")
    maestro_commands = maestro.add_subparsers(dest="maestro_command", required=True, metavar="COMMAND")
    maestro_cli.add_render(maestro_commands)
    maestro_cli.add_preprocess(maestro_commands)
    batch_cli.add_retranscribe(maestro_commands)
    maestro_cli.add_subset(maestro_commands)
    maestro_cli.add_fetch_samples(maestro_commands)
    transcribe_cli.add_transcribe(commands)
    compose_cli.add_compose(commands)
    synthesize_cli.add_synthesize(commands)
    train = commands.add_parser("train", help="train a model: transcribe, compose, synthesize",
                                description="Train one of the models; rerunning a command resumes it.")
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    transcribe_cli.add_train(models)
    transcribe_cli.add_train_rescorer(models)
    transcribe_cli.add_train_pedal(models)
    compose_cli.add_train(models)
    synthesize_cli.add_train(models)
    tune = commands.add_parser("tune", help="choose a model's inference settings on validation data: transcribe, pedal",
                               description="Choose a trained model's inference settings on validation data.")
    models = tune.add_subparsers(dest="model", required=True, metavar="MODEL")
    transcribe_cli.add_tune(models)
    transcribe_cli.add_tune_pedal(models)
    evaluate = commands.add_parser("evaluate", help="measure a model: transcribe, compose, synthesize",
                                   description="Measure one of the models on held-out data.")
    models = evaluate.add_subparsers(dest="model", required=True, metavar="MODEL")
    transcribe_cli.add_evaluate(models)
    compose_cli.add_evaluate(models)
    synthesize_cli.add_evaluate(models)
    transcribe_cli.add_benchmark(commands)
    add_ship(commands)
    flows_cli.add_full(commands)
    flows_cli.add_maestro_t(commands)
    flows_cli.add_serve(commands)
    add_command(commands, "example", "run the main job on the bundled example", Example,
                "batch.example:run_example", beam=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    # No telemetry leaves the machine.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_beam_options", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    args.command_line = shlex.join(["w2m2w", *(sys.argv[1:] if argv is None else argv)])  # for records
    quiet.configure(args.verbose)
    return run_command(args)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (temporaries removed, Prefect's
    temporary server stopped) before the process ends."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    raise Terminated()


def run_command(args) -> int:
    """Run a parsed command. What the user can fix gets one line, not a traceback (`-v` adds it):
    exit status 2 for a bad argument, folder or checkpoint, 1 for other failures; an interrupted
    run keeps what it finished and exits with 128 + the signal's number."""
    from stages.contract import FAILED_SO_FAR, describe_error, printable

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    FAILED_SO_FAR.clear()
    try:
        with private_temporaries():
            return args.run(args)
    except KeyboardInterrupt as interrupt:
        for stage, error in FAILED_SO_FAR:  # what failed before the interruption is still said
            print(f"{stage}: FAILED {printable(error.path)}: {printable(error.reason)}")
        print("w2m2w: interrupted; finished files are kept, and the same command goes on from there",
              file=sys.stderr)
        return 128 + int(getattr(interrupt, "signum", signal.SIGINT))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError) as error:
        _explain(args, f"w2m2w: error: {error}")
        return 2
    except OSError as error:
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        _explain(args, f"w2m2w: error: {describe_error(error)}{where}")
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def private_temporaries():
    """Temporary files of the libraries a command runs (TensorFlow's autograph writes
    `__autograph_generated_file*.py` and never removes them) in a folder of the command's own,
    removed when it ends, however it ends."""
    folder = tempfile.mkdtemp(prefix="w2m2w-")
    saved = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = folder, folder  # and the processes it starts
    try:
        yield folder
    finally:
        tempfile.tempdir = saved[0]
        if saved[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[1]
        shutil.rmtree(folder, ignore_errors=True)


def _explain(args, line: str) -> None:
    if args.verbose:
        import traceback

        traceback.print_exc()
    print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
