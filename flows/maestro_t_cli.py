"""The `w2m2w maestro-t` command: the Wave2Midi2Wave loop (flows/maestro_t.py) from the shell."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from stages import options
from stages.cli import check_paths


def add_maestro_t(commands) -> None:
    parser = commands.add_parser(
        "maestro-t", help="the composer trained on a dataset's transcriptions (Prefect, no server needed)",
        description="The Wave2Midi2Wave loop on a MAESTRO-layout DATASET (any version's metadata): its audio "
                    "re-transcribed on Beam (OUT/transcription/), written as a MAESTRO-layout MIDI corpus with "
                    "the same metadata, splits and file names (OUT/corpus/, transcribed_by.json names the "
                    "transcriber), a composer trained on it (OUT/composer/; with --train-on ground-truth, on the "
                    "dataset's own MIDI instead), scored in NLL per event on the ground-truth and the transcribed "
                    "test split (OUT/evaluation.json), and a record and model "
                    "card (OUT/maestro-t.json, OUT/model-card.md). Each step is cached on what it reads: a "
                    "rerun recomputes nothing, a killed run resumes. Other arguments are Beam options for the "
                    "re-transcription.")
    parser.add_argument("dataset", type=Path, help="MAESTRO-layout dataset folder")
    parser.add_argument("out", type=Path, help="run folder")
    parser.add_argument("--transcriber", type=Path, help="a .keras transcriber (default: the shipped one)")
    parser.add_argument("--transcriptions", type=Path,
                        help="re-transcription folder (default: OUT/transcription): another run's, so that a second "
                             "run of the same dataset and transcriber (e.g. --train-on ground-truth) shares its work")
    parser.add_argument("--no-note-ends", action="store_true",
                        help="end transcribed notes at the frame and offset thresholds (see `w2m2w transcribe --help`)")
    parser.add_argument("--composer-config", default="default", choices=("tiny", "default", "paper"),
                        help="the composer's size and training settings (with --from, its training settings)")
    parser.add_argument("--architecture", default="relative", choices=("relative", "absolute", "lstm"))
    parser.add_argument("--train-on", default="transcribed", choices=("transcribed", "ground-truth"),
                        help="learn from the transcriptions (default), or from the dataset's own MIDI: the baseline, "
                             "scored the same way")
    parser.add_argument("--steps", type=options.COUNT, default=1_750,
                        help="optimizer steps; the learning rate decays over them (default: 1,750)")
    parser.add_argument("--from", dest="from_checkpoint", type=Path,
                        help="fine-tune this trained composer instead of training from random weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-per-epoch", type=options.COUNT, default=250)
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"), help="split scored")
    parser.add_argument("--chunk-length", type=options.COUNT,
                        help="tokens per scored chunk (default: the composer's training length; the paper: 2048)")
    parser.add_argument("--max-pieces", type=options.COUNT, help="score an even spread of this many pieces")
    parser.add_argument("--raw-only", action="store_true", help="score the raw probability only (faster)")
    parser.set_defaults(run=run_maestro_t)


def run_maestro_t(args) -> int:
    check_paths(args.dataset, args.out, {"transcriber": args.transcriber,
                                         "composer": args.from_checkpoint})  # before Prefect and TensorFlow load
    from maestro.metadata import find_metadata

    find_metadata(args.dataset)  # a MAESTRO layout, or one line saying it is not
    from flows.maestro_t import maestro_t
    from flows.server import prefect_api
    from stages.contract import write_text_atomic

    if not args.verbose:
        for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    beam_args = list(args.beam_args)
    if not args.verbose and not any(a.startswith(("--runner", "--direct_running_mode")) for a in beam_args):
        beam_args.append("--direct_running_mode=multi_threading")  # worker processes would each log ~20 lines
    with prefect_api():
        summary = maestro_t(dataset=args.dataset, output_dir=args.out, transcriber=args.transcriber,
                            transcriptions=args.transcriptions,
                            note_ends=not args.no_note_ends, train_on=args.train_on,
                            composer_config=args.composer_config, architecture=args.architecture, steps=args.steps,
                            from_checkpoint=args.from_checkpoint,
                            seed=args.seed, steps_per_epoch=args.steps_per_epoch, split=args.split,
                            chunk_length=args.chunk_length, max_pieces=args.max_pieces, raw_only=args.raw_only,
                            beam_args=beam_args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    corpus, scores = summary["corpus"], summary["evaluation"]
    print(f"corpus: {corpus['records']} transcribed recordings {corpus['splits']}, "
          f"{len(corpus['missing'])} missing (transcriber {summary['transcriber']['sha256_16']})")
    for name in ("ground_truth", "transcribed"):
        s = scores[name]
        print(f"NLL per event on the {name.replace('_', '-')} {scores['split']} split: {s['nll_per_event']} "
              f"(95% {s['nll_per_event_interval_95'][0]}-{s['nll_per_event_interval_95'][1]}, {s['pieces']} pieces)")
    print(f"-> {args.out} (maestro-t.json, model-card.md, summary.json)")
    return 0 if not summary["transcription_failed"] else 1
