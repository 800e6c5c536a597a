"""The `w2m2w transcribe`, `train transcribe` and `evaluate transcribe` commands."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from stages import options
from stages.cli import check_paths, cores
from stages.settings import add_arguments, from_namespace
from transcribe.config import DecodingSettings


def add_transcribe(commands) -> None:
    parser = commands.add_parser(
        "transcribe", help="piano recordings -> MIDI (Onsets and Frames)",
        description="Transcribe recordings (WAV, FLAC, MP3, OGG, ...; any sample rate and channel "
                    "count) to MIDI under OUT: a recording given by name becomes OUT/<name>.midi, a "
                    "folder's recordings mirror its tree under OUT. Finished files are skipped; a bad "
                    "file is reported and the rest go on. The shipped checkpoint decodes at thresholds "
                    "tuned on validation, with an onset rescorer that decides where notes start and "
                    "where they stop; the options below override them.")
    parser.add_argument("inputs", type=Path, nargs="+", metavar="IN", help="recordings and/or folders of recordings")
    parser.add_argument("out", type=Path, metavar="OUT", help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="a .keras transcriber (default: the shipped one)")
    add_arguments(parser, DecodingSettings)
    parser.add_argument("--save-probabilities", action="store_true",
                        help="also write the model's probabilities beside each MIDI (.npz: onsets, offsets, "
                             "frames, velocities, (frames, 88) float16 each, and frames_per_second)")
    parser.add_argument("--pedal", choices=("baked", "cc64"), default="baked",
                        help="baked (default): notes last as long as they sound, the sustain pedal's hold "
                             "included (the MAESTRO protocol; best for playback without a pedal); cc64: the "
                             "pedal network writes sustain-pedal (CC 64) events and notes end where their keys "
                             "were let go (for notation and for playback with the pedal; the pedal network is "
                             "rough so far: presses within 50 ms F1 0.15, see docs/transcribe.md)")
    parser.add_argument("--max-seconds", type=options.POSITIVE, default=7200.0,
                        help="refuse recordings longer than this, read from their headers before decoding (default: "
                             "7200, two hours: about 600 MB of memory)")
    parser.add_argument("--sequence", action="store_true", help="also write the NoteSequence (.pb)")
    parser.add_argument("--csv", action="store_true", help="also write the notes as CSV")
    parser.add_argument("--overwrite", action="store_true", help="transcribe again files already done")
    parser.set_defaults(run=run_transcribe)


def run_transcribe(args) -> int:
    check_paths(args.inputs, args.out, {"transcriber": args.checkpoint})  # before TensorFlow loads
    from stages.checkpoints import checkpoint_for
    from stages.contract import StageReport
    from transcribe.stage import TranscribeStage

    checkpoint = checkpoint_for("transcribe", args.checkpoint)
    decoding = from_namespace(DecodingSettings, args)
    stage = TranscribeStage(checkpoint, decoding, sequence=args.sequence, notes_csv=args.csv,
                            probabilities=args.save_probabilities, pedal=args.pedal, max_seconds=args.max_seconds)
    if len(args.inputs) == 1:
        report = stage.run(args.inputs[0], args.out, overwrite=args.overwrite)
    else:
        outputs: dict[Path, Path] = {}  # output -> the input it comes from, across all inputs
        for inputs in args.inputs:
            for job in stage.plan(inputs, args.out):
                for target in job.targets.values():
                    if target in outputs:
                        raise ValueError(f"{job.source} and {outputs[target]} would both be written to {target}; "
                                         "transcribe them into separate folders")
                    outputs[target] = job.source
        report = StageReport(stage=stage.name, output_dir=str(args.out))
        for inputs in args.inputs:
            part = stage.run(inputs, args.out, overwrite=args.overwrite)
            report.written += part.written
            report.skipped += part.skipped
            report.failed += part.failed
    print(report.summary())
    return 0 if report.ok else 1


def add_train(models) -> None:
    transcriber = models.add_parser(
        "transcribe", help="Onsets and Frames on `w2m2w maestro preprocess` TFRecords",
        description="Train Onsets and Frames on random crops of the transcription TFRecords "
                    "(train split), scoring validation spans with mir_eval after every epoch. "
                    "RUN_DIR gets best.keras (best validation note F1), last.keras, history.csv "
                    "and TensorBoard logs; rerunning the same command resumes.")
    transcriber.add_argument("tfrecords", type=Path, help="output folder of `w2m2w maestro preprocess`")
    transcriber.add_argument("run_dir", type=Path)
    transcriber.add_argument("--config", default="default", choices=("tiny", "default", "paper"))
    transcriber.add_argument("--steps", type=options.COUNT, default=20_000,
                             help="training steps in all (default: 20000)")
    transcriber.add_argument("--steps-per-epoch", type=options.COUNT, default=250, help="steps between validations")
    transcriber.add_argument("--validation-spans", type=options.COUNT, default=32, help="validation examples scored")
    transcriber.add_argument("--learning-rate", type=options.LEARNING_RATE,
                             help="initial learning rate (default: the config's)")
    transcriber.add_argument("--low-register-weight", type=options.POSITIVE, metavar="W",
                             help="weigh the onset and frame losses on keys below C3 W times the others' "
                                  "(default: the config's, 1)")
    transcriber.add_argument("--from", dest="initial_weights", type=Path,
                             help="start from this trained transcriber's weights (same config) instead of at random")
    transcriber.add_argument("--cache", type=Path, help="feature cache folder (default: TFRECORDS/transcription-cache)")
    transcriber.add_argument("--seed", type=options.SEED, default=0)
    transcriber.set_defaults(run=run_train_transcribe)


def run_train_transcribe(args) -> int:
    from transcribe.config import TranscriberConfig
    from transcribe.onsets_frames.training import train

    config = TranscriberConfig.named(args.config)
    if args.learning_rate:
        config = dataclasses.replace(config, learning_rate=args.learning_rate)
    if args.low_register_weight:
        config = dataclasses.replace(config, low_register_weight=args.low_register_weight)
    train(args.tfrecords, args.run_dir, config, args.steps, args.steps_per_epoch,
          args.validation_spans, args.cache, cache_workers=cores(), seed=args.seed,
          initial_weights=args.initial_weights)
    return 0


def add_train_pedal(models) -> None:
    parser = models.add_parser(
        "pedal", help="the sustain-pedal network on `w2m2w maestro preprocess` TFRecords",
        description="Train the sustain-pedal network (CC 64: down, pressed, released per frame) on random "
                    "crops of the transcription TFRecords, whose sequences carry the pedal, scoring pedal F1 "
                    "(a press within 50 ms) on validation spans after every epoch. RUN_DIR gets best.keras; "
                    "ship it beside a transcriber as CHECKPOINT.pedal.keras. Rerunning resumes.")
    parser.add_argument("tfrecords", type=Path, help="output folder of `w2m2w maestro preprocess`")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--config", default="default", choices=("tiny", "default"))
    parser.add_argument("--steps", type=options.COUNT, default=5_000, help="training steps in all (default: 5000)")
    parser.add_argument("--steps-per-epoch", type=options.COUNT, default=250, help="steps between validations")
    parser.add_argument("--cache", type=Path, help="feature cache folder (default: TFRECORDS/transcription-cache)")
    parser.add_argument("--seed", type=options.SEED, default=0)
    parser.set_defaults(run=run_train_pedal)


def run_train_pedal(args) -> int:
    from transcribe.pedal.pedal import PedalConfig
    from transcribe.pedal.training import train_pedal

    train_pedal(args.tfrecords, args.run_dir, PedalConfig.named(args.config), args.steps,
                steps_per_epoch=args.steps_per_epoch, cache_dir=args.cache, seed=args.seed)
    return 0


def add_evaluate(models) -> None:
    transcriber = models.add_parser(
        "transcribe", help="mir_eval metrics on a MAESTRO-layout split",
        description="Transcribe every recording of a split of a MAESTRO-layout ROOT and score it "
                    "against its MIDI (sustain applied, cut to the audio) with mir_eval, per "
                    "piece, then averaged over pieces (the MAESTRO paper's protocol). Prints the "
                    "mean as JSON; --out writes the per-piece figures too.")
    transcriber.add_argument("root", type=Path, help="MAESTRO-layout dataset")
    transcriber.add_argument("--split", default="test")
    transcriber.add_argument("--checkpoint", type=Path, help="a .keras transcriber (default: the shipped one)")
    add_arguments(transcriber, DecodingSettings, skip=("midi_tempo",))  # as `w2m2w transcribe` decodes
    transcriber.add_argument("--excerpt-seconds", type=options.POSITIVE,
                             help="score only the first N seconds of each piece")
    transcriber.add_argument("--limit", type=options.COUNT, help="only the first N pieces")
    transcriber.add_argument("--out", type=Path, help="write the full evaluation (JSON) here")
    transcriber.set_defaults(run=run_evaluate_transcribe)


def run_evaluate_transcribe(args) -> int:
    from stages.checkpoints import checkpoint_for
    from transcribe.evaluate import evaluate
    from transcribe.metrics import format_metrics
    from transcribe.transcriber import Transcriber

    checkpoint, decoding = checkpoint_for("transcribe", args.checkpoint), from_namespace(DecodingSettings, args)
    decoding.check_for(checkpoint)
    transcriber = Transcriber.load(checkpoint, decoding)
    result = evaluate(transcriber, args.root, args.split, args.excerpt_seconds, args.limit)
    print(format_metrics(result.mean), file=sys.stderr)
    summary = {"split": args.split, "pieces": len(result.pieces), "audio_seconds": round(result.audio_seconds, 1),
               "excerpt_seconds": args.excerpt_seconds, **{k: round(v, 4) for k, v in result.mean.items()}}
    if result.by_soundfont:  # a rendered dataset: how each soundfont fared
        summary["by_soundfont"] = {name: {k: round(v, 4) for k, v in metrics.items()}
                                   for name, metrics in result.by_soundfont.items()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**summary, "per_piece": dataclasses.asdict(result)["pieces"]}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def add_benchmark(commands) -> None:
    parser = commands.add_parser(
        "benchmark", help="mir_eval report: reference MIDI against estimated MIDI of one or more tools",
        description="Score labelled folders of estimated MIDI (ours, basic-pitch's, magenta's, ...) against "
                    "reference MIDI (a folder, or a MAESTRO root whose metadata adds composer, year and "
                    "audio length) with the MAESTRO paper's metrics, per piece and averaged over pieces, "
                    "side by side. Writes report.json, pieces.csv and a self-contained report.html under "
                    "--out. Example: w2m2w benchmark ref/ ours=out/ basic-pitch=bp-out/ --out report/")
    parser.add_argument("reference", type=Path, help="reference MIDI folder or MAESTRO root")
    parser.add_argument("estimates", nargs="+", metavar="NAME=DIR",
                        help="a folder of estimated MIDI and its label in the report (unique); a bare DIR is "
                             "labelled with its folder name")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--estimate-naming", default="auto", choices=("auto", "same", "basic-pitch", "magenta"),
                        help="how an estimate is named after its reference <name>: same (<name>.mid/.midi), "
                             "basic-pitch (<name>_basic_pitch.mid), magenta (<name>.wav.midi or <name>.midi); "
                             "auto (default) tries each; nested or flat folders alike")
    parser.add_argument("--sustain-estimates", default="auto", choices=("auto", "on", "off"),
                        help="apply the sustain pedal (CC 64) to the estimates before scoring, as to the "
                             "references: auto (default) where an estimate's file has pedal events, on, or off "
                             "(score notes as written, for tools that also hold the notes the pedal sustains)")
    parser.set_defaults(run=run_benchmark)


def run_benchmark(args) -> int:
    from stages.contract import printable
    from transcribe.metrics import format_metrics
    from transcribe.report import check_shared_names, find_references, labelled_folders, score, write_report

    estimates = labelled_folders(args.estimates)  # NAME=DIR -> {NAME: DIR}
    check_paths([args.reference, *estimates.values()], args.out)
    references = find_references(args.reference)
    if not references:
        raise ValueError(f"no reference MIDI under {args.reference}")
    check_shared_names(references, estimates, args.estimate_naming)
    result = score(references, estimates, naming=args.estimate_naming, sustain=args.sustain_estimates)
    for name, system in result["systems"].items():
        print(f"{name}: {len(system['pieces'])} pieces scored, {len(system['missing'])} without an estimate, "
              f"{len(system['failed'])} failed")
        for failure in system["failed"]:
            print(f"  FAILED {printable(failure['estimate'])}: {printable(failure['reason'])}")
        print(format_metrics(system["mean"]))
    for path in write_report(result, references, args.out):
        print(path)
    return 1 if any(system["failed"] for system in result["systems"].values()) else 0


def add_train_rescorer(models) -> None:
    parser = models.add_parser(
        "rescorer", help="the onset rescorer (and note-end network) of a transcriber checkpoint",
        description="Train the onset rescorer of a transcriber checkpoint on its own predictions on the train "
                    "split of TRAIN_DATASET, choosing its acceptance threshold on the validation split of "
                    "VALIDATION_DATASET (both `w2m2w maestro render` outputs, whole recordings); with --note-ends "
                    "also its note-end network. Logs validation F1 without the rescorer and at each threshold; "
                    "--apply writes it beside the checkpoint (CHECKPOINT.rescorer.keras and .json).")
    parser.add_argument("train_dataset", type=Path, help="MAESTRO-layout dataset (its train split)")
    parser.add_argument("validation_dataset", type=Path, help="MAESTRO-layout dataset (its validation split)")
    parser.add_argument("--checkpoint", type=Path, help="the transcriber (default: the shipped one)")
    parser.add_argument("--cache", type=Path, help="folder for the predictions (reused when rerun)")
    parser.add_argument("--train-pieces", type=options.COUNT, help="use only the first N train recordings")
    parser.add_argument("--candidate-threshold", type=options.number(above=0, below=1), default=0.05,
                        help="onset head probability that makes a candidate (default: 0.05)")
    parser.add_argument("--epochs", type=options.COUNT, default=8)
    parser.add_argument("--seed", type=options.SEED, default=0)
    parser.add_argument("--note-ends", action="store_true", help="also train the note-end network")
    parser.add_argument("--end-epochs", type=options.COUNT, default=4, help="the note-end network's epochs")
    parser.add_argument("--apply", action="store_true", help="write the rescorer beside the checkpoint")
    parser.set_defaults(run=run_train_rescorer)


def run_train_rescorer(args) -> int:
    from stages.checkpoints import checkpoint_for
    from transcribe.rescorer.training import train_rescorer

    record = train_rescorer(checkpoint_for("transcribe", args.checkpoint), args.train_dataset, args.validation_dataset,
                            cache=args.cache, train_pieces=args.train_pieces,
                            candidate_threshold=args.candidate_threshold, epochs=args.epochs, seed=args.seed,
                            note_ends=args.note_ends, end_epochs=args.end_epochs, apply=args.apply,
                            command=getattr(args, "command_line", ""))
    print(json.dumps(record, indent=2))
    return 0


def add_tune(models) -> None:
    parser = models.add_parser(
        "transcribe", help="the transcriber's decoding thresholds, on validation recordings",
        description="Choose the transcriber's onset, frame and offset thresholds, the offset head's frame gate "
                    "and the offset correction on the validation split of DATASET (a MAESTRO-layout folder), "
                    "ranked by note F1 + frame F1 + note-with-offset F1. --apply writes them into the "
                    "checkpoint's config (weights unchanged) and its JSON record. The onset rescorer is left "
                    "out (it decides onsets in place of the onset threshold).")
    parser.add_argument("dataset", type=Path, help="MAESTRO-layout dataset (its validation split)")
    parser.add_argument("--checkpoint", type=Path, help="the transcriber (default: the shipped one)")
    parser.add_argument("--pieces", type=options.COUNT, default=14, help="validation recordings used (default: 14)")
    parser.add_argument("--seconds", type=options.POSITIVE, default=60.0, help="seconds of each used (default: 60)")
    parser.add_argument("--apply", action="store_true", help="write the best settings into the checkpoint")
    parser.set_defaults(run=run_tune_transcribe)


def add_tune_pedal(models) -> None:
    parser = models.add_parser(
        "pedal", help="the pedal network's decoding settings, on validation spans",
        description="Choose the sustain-pedal network's decoding settings (down threshold, press/release "
                    "threshold, shortest press or gap) on validation spans of TFRECORDS, ranked by press F1 + "
                    "press-and-release F1. --apply writes them into the checkpoint's config (weights unchanged).")
    parser.add_argument("tfrecords", type=Path, help="output folder of `w2m2w maestro preprocess`")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the pedal network (.keras)")
    parser.add_argument("--spans", type=options.COUNT, default=48, help="validation spans used (default: 48)")
    parser.add_argument("--cache", type=Path, help="feature cache folder (default: TFRECORDS/transcription-cache)")
    parser.add_argument("--apply", action="store_true", help="write the best settings into the checkpoint")
    parser.set_defaults(run=run_tune_pedal)


def run_tune_pedal(args) -> int:
    from transcribe.pedal.training import tune_pedal

    check_paths(args.tfrecords, None, {"pedal network": args.checkpoint})
    print(json.dumps(tune_pedal(args.tfrecords, args.checkpoint, args.spans, args.apply, args.cache), indent=2))
    return 0


def run_tune_transcribe(args) -> int:
    from stages.checkpoints import checkpoint_for
    from transcribe.tuning import tune_thresholds

    chosen = tune_thresholds(checkpoint_for("transcribe", args.checkpoint), args.dataset, args.pieces, args.seconds,
                             apply=args.apply, command=getattr(args, "command_line", ""))
    print(json.dumps(chosen, indent=2))
    return 0
