"""The `w2m2w full` and `w2m2w serve` commands."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from stages import options
from stages.cli import check_paths
from stages.contract import printable
from stages.settings import add_arguments, from_namespace
from transcribe.config import DecodingSettings

CACHE_FOLDER = ".prefect-cache"  # Prefect's task results under the run folder


def add_full(commands) -> None:
    parser = commands.add_parser(
        "full", help="the whole DAG on a folder of recordings (Prefect, no server needed)",
        description="Run the wave2midi2wave Prefect flow in Prefect's ephemeral mode: preprocess "
                    "(Beam) -> transcribe -> compose -> synthesize -> report, under OUT (one folder "
                    "per stage, report.json). Tasks are cached on their inputs' contents: a rerun "
                    "recomputes nothing, a killed run resumes.")
    parser.add_argument("inputs", nargs="?", type=Path, help="folder of recordings (default: the bundled example)")
    parser.add_argument("out", type=Path, help="run folder")
    parser.add_argument("--seconds", type=options.number(above=0, at_most=600), default=20.0,
                        help="new music per piece, seconds (default: 20; at most 600)")
    parser.add_argument("--primer-seconds", type=options.number(above=0, at_most=120), default=10.0,
                        help="seconds of each transcription to continue (default: 10; at most 120)")
    parser.add_argument("--finetune-steps", type=options.COUNT_OR_ZERO, default=0,
                        help="fine-tune the composer first (default: 0)")
    parser.add_argument("--seed", type=options.SEED, default=0)
    parser.add_argument("--stages", type=stage_list, default="preprocess,transcribe,compose,synthesize,report",
                        help="comma-separated, from preprocess,transcribe,compose,synthesize,report (default: all)")
    parser.add_argument("--transcriber", type=Path)
    add_arguments(parser.add_argument_group("transcription", "how the transcribe stage decodes notes, as in "
                                                             "`w2m2w transcribe`"), DecodingSettings)
    parser.add_argument("--composer", type=Path)
    parser.add_argument("--synthesizer", type=Path)
    parser.add_argument("--dask", metavar="HOST:PORT",
                        help="a Dask scheduler: run each stage as one task per file on its workers "
                             "(prefect-dask's DaskTaskRunner); IN and OUT must be on a filesystem they share")
    parser.set_defaults(run=run_full)


def stage_list(text: str) -> list[str]:
    """argparse type of --stages: known stage names, comma-separated."""
    import argparse

    known = ("preprocess", "transcribe", "compose", "synthesize", "report")
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stage {', '.join(unknown) or '(none)'}; choose from {','.join(known)}")
    return names


def run_full(args) -> int:
    check_paths(args.inputs, args.out, {"transcriber": args.transcriber, "composer": args.composer,
                                        "synthesizer": args.synthesizer})  # before Prefect and TensorFlow load
    from flows.full import EXAMPLE_RECORDINGS, wave2midi2wave
    from flows.server import prefect_api
    from stages.contract import write_text_atomic

    if not args.verbose:  # a failure is said once, below, not as Prefect's tracebacks
        for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    beam_args = list(args.beam_args)
    if not args.verbose and not any(a.startswith(("--runner", "--direct_running_mode")) for a in beam_args):
        beam_args.append("--direct_running_mode=multi_threading")  # worker processes would each log ~20 lines
    with prefect_api(), results_under(args.out):
        summary = wave2midi2wave(input_dir=args.inputs or EXAMPLE_RECORDINGS, output_dir=args.out,
                                 seconds=args.seconds, primer_seconds=args.primer_seconds,
                                 finetune_steps=args.finetune_steps, seed=args.seed, stages=args.stages,
                                 transcriber=args.transcriber, decoding=from_namespace(DecodingSettings, args),
                                 composer=args.composer, synthesizer=args.synthesizer,
                                 beam_args=beam_args, dask_address=args.dask)
    write_text_atomic(args.out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    print("\n".join(summary_lines(summary)))
    failed = sum(len(r.get("failed", [])) for r in summary["stages"].values())
    return 0 if failed == 0 else 1


@contextlib.contextmanager
def results_under(out: Path):
    """Prefect's task results, which its cache serves a rerun from, under the run folder
    (OUT/.prefect-cache) rather than in ~/.prefect: a run's cache goes with its folder. A
    PREFECT_RESULTS_LOCAL_STORAGE_PATH set by the user is kept."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    if any(name in os.environ for name in ("PREFECT_RESULTS_LOCAL_STORAGE_PATH", "PREFECT_LOCAL_STORAGE_PATH")):
        yield
        return
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: (out / CACHE_FOLDER).resolve()}):
        yield


def summary_lines(summary: dict) -> list[str]:
    """A few lines for the terminal: one per stage, its failures, the report's main figures (the
    whole summary is in OUT/summary.json)."""
    lines = []
    for name, report in summary["stages"].items():
        seconds = summary["stage_seconds"].get(name)
        lines.append(f"{name}: {len(report['written'])} written, {len(report['skipped'])} skipped (already done), "
                     f"{len(report['failed'])} failed" + (f" [{seconds:.1f} s]" if seconds is not None else ""))
        lines += [f"  FAILED {printable(error['path'])}: {printable(error['reason'])}" for error in report["failed"]]
    for measure, figures in (summary.get("report") or {}).items():
        systems = {name: value for name, value in figures.items() if isinstance(value, dict)}
        plain = {name: value for name, value in figures.items() if not isinstance(value, dict)}
        if plain:
            lines.append(f"{measure}: " + ", ".join(f"{k} {v}" for k, v in plain.items()))
        for system, values in systems.items():
            shown = {k: v for k, v in values.items() if k.endswith("/f1") or k == "pieces"}
            lines.append(f"{measure} / {system}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    out = Path(summary["output_dir"])
    reports = (("report.json", out / "report.json"), ("reports/", out / "reports"))
    made = ["summary.json"] + [name for name, path in reports if "report" in summary and path.exists()]
    lines.append(f"-> {summary['output_dir']} ({', '.join(made)})")
    return lines


def add_serve(commands) -> None:
    parser = commands.add_parser(
        "serve", help="serve every deployment from this process (against PREFECT_API_URL)",
        description="Serve wave2midi2wave/full, one deployment per stage, retranscribe-maestro/batch "
                    "and benchmark-report/report from this process, so `prefect deployment run "
                    "wave2midi2wave/full --param ...` runs here. Start a server first (`prefect server "
                    "start`) and point PREFECT_API_URL at it; stop this process before the server.")
    parser.set_defaults(run=run_serve)


def run_serve(args) -> int:
    from prefect import serve

    from flows.deployments import deployments

    serve(*deployments())
    return 0
