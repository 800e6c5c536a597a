"""The `w2m2w full` and `w2m2w serve` commands."""

from __future__ import annotations

import json
from pathlib import Path


def add_full(commands) -> None:
    parser = commands.add_parser(
        "full", help="the whole DAG on a folder of recordings (Prefect, no server needed)",
        description="Run the wave2midi2wave Prefect flow in Prefect's ephemeral mode: preprocess "
                    "(Beam) -> transcribe -> compose -> synthesize -> report, under OUT (one folder "
                    "per stage, report.json). Tasks are cached on their inputs' contents: a rerun "
                    "recomputes nothing, a killed run resumes.")
    parser.add_argument("inputs", nargs="?", type=Path, help="folder of recordings (default: the bundled example)")
    parser.add_argument("out", type=Path, help="run folder")
    parser.add_argument("--seconds", type=float, default=20.0, help="new music per piece, seconds (default: 20)")
    parser.add_argument("--primer-seconds", type=float, default=10.0)
    parser.add_argument("--finetune-steps", type=int, default=0, help="fine-tune the composer first (default: 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default="preprocess,transcribe,compose,synthesize,report")
    parser.add_argument("--transcriber", type=Path)
    parser.add_argument("--no-note-ends", action="store_true",
                        help="end transcribed notes at the frame and offset thresholds (see `w2m2w transcribe --help`)")
    parser.add_argument("--composer", type=Path)
    parser.add_argument("--synthesizer", type=Path)
    parser.set_defaults(run=run_full)


def run_full(args) -> int:
    from flows.full import EXAMPLE_RECORDINGS, wave2midi2wave

    summary = wave2midi2wave(input_dir=args.inputs or EXAMPLE_RECORDINGS, output_dir=args.out, seconds=args.seconds,
                             primer_seconds=args.primer_seconds, finetune_steps=args.finetune_steps, seed=args.seed,
                             stages=args.stages.split(","), transcriber=args.transcriber,
                             note_ends=not args.no_note_ends, composer=args.composer,
                             synthesizer=args.synthesizer, beam_args=list(args.beam_args))
    print(json.dumps(summary, indent=2, default=str))
    failed = sum(len(r.get("failed", [])) for r in summary["stages"].values())
    return 0 if failed == 0 else 1


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
