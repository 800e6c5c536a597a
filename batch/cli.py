"""The `w2m2w maestro retranscribe` command (registered under `maestro` by pipeline.py).

Beam, TensorFlow and the transcriber load inside `run_retranscribe`, so that `w2m2w --help` stays fast.
"""

from __future__ import annotations

from maestro.cli import add_selection
from stages import options
from stages.cli import check_paths, csv_list
from stages.settings import add_arguments, from_namespace
from transcribe.config import DecodingSettings


def add_retranscribe(commands) -> None:
    parser = commands.add_parser(
        "retranscribe", help="Apache Beam: transcribe a whole MAESTRO-layout dataset, with metrics",
        description="Transcribe every recording of a MAESTRO-layout ROOT (any version's metadata; "
                    "filter with --splits, --years, --composers) with a transcriber checkpoint through "
                    "Beam's RunInference, writing OUT/<recording path>.midi and its mir_eval metrics "
                    "against the dataset's MIDI, and OUT/retranscription.json. A rerun skips finished "
                    "recordings; a bad one is reported and the rest go on. Other arguments are Beam "
                    "pipeline options (e.g. --runner=DataflowRunner ...); without --runner it runs "
                    "locally on all cores.")
    parser.add_argument("root", help="MAESTRO-layout dataset folder")
    parser.add_argument("out", help="output folder (local or gs://...)")
    parser.add_argument("--checkpoint", help="a .keras transcriber (default: the shipped one)")
    parser.add_argument("--splits", type=csv_list, default=(), help="only these splits, comma-separated")
    add_selection(parser)
    parser.add_argument("--batch-size", type=options.COUNT, default=4, help="20 s windows per model call (default: 4)")
    add_arguments(parser.add_argument_group("decoding", "as in `w2m2w transcribe`"), DecodingSettings)
    parser.set_defaults(run=run_retranscribe)


def run_retranscribe(args) -> int:
    check_paths(args.root, args.out, {"transcriber": args.checkpoint})  # before TensorFlow and Beam load
    from batch import retranscribe
    from stages.checkpoints import checkpoint_for
    from stages.contract import printable
    from transcribe.metrics import format_metrics

    config = retranscribe.RetranscribeConfig(args.splits, args.years, args.composers, args.batch_size,
                                             from_namespace(DecodingSettings, args))
    checkpoint = str(checkpoint_for("transcribe", args.checkpoint))
    summary = retranscribe.run(args.root, args.out, checkpoint, config, args.beam_args)
    print(f"{summary['transcribed']} of {summary['recordings']} recordings transcribed, "
          f"{summary['failed_count']} failed")
    for path, reason in summary["failed"]:
        print(f"  FAILED {printable(path)}: {printable(reason)}")
    if summary["mean"]:
        print(format_metrics(summary["mean"]))
    return 0 if summary["failed_count"] == 0 else 1
