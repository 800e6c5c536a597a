"""The MAESTRO-T experiment's report (issue 61): two composers trained alike from the same start,
one on a dataset's ground-truth MIDI, one on its transcriptions (`w2m2w maestro-t`), compared.

    python -m benchmarks.maestro_t --dataset DATA --transcribed-run RUN_T --ground-truth-run RUN_GT
                                   [--samples 16] [--seconds 20] [--seed 0] [--temperature 1.0] [--top-p 0.95]

RUN_T is `w2m2w maestro-t DATA RUN_T ...`, RUN_GT the same with `--train-on ground-truth`; both must
hold the same config, architecture, steps, seed, start and transcriber, and be scored alike
(their maestro-t.json and evaluation.json say so), or the report refuses. It writes
benchmarks/results/maestro_t.json and maestro_t.png with:

1. NLL per event (nats) of each composer on the ground-truth and on the transcribed test split,
   with their 95% bootstrap intervals over pieces (the runs' evaluation.json), and the gap on
   the ground truth (trained on transcriptions minus trained on the ground truth) against the
   0.05 nats target;
2. statistics (`benchmarks.compose_samples.statistics`: notes per second, note lengths, polyphony,
   pitch, velocity) of N pieces of S seconds each composer writes from nothing (the same seeds
   for both), beside those of the pianists' test MIDI and of its transcription, cut into S-second
   stretches;
3. the transcription errors of the train split (what the composer learns from; `transcribe.errors`:
   missed notes, ghosts by kind, onset, length and velocity errors of matched notes), and each
   statistic of the train split, ground truth against transcriptions, with the shift each kind
   of error makes alone (`benchmarks.maestro_t_errors.attribution`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks import record
from benchmarks.maestro_t_errors import attribution, classified, paired_split, pooled_statistics, stretches_of
from transcribe.errors import error_summary

NAME = "maestro_t"
TARGET_GAP_NATS = 0.05
SAME_COMPOSER = ("config", "architecture", "steps", "seed", "from")
SAME_SCORING = ("split", "chunk_tokens", "pieces")
SCORED_ON = {"ground_truth": "scored_on_ground_truth", "transcribed": "scored_on_transcribed"}


class RunsDiffer(ValueError):
    """The two runs are no controlled comparison."""


def read_run(folder: Path) -> dict:
    """A run's record (maestro-t.json), with its evaluation.json as `evaluation`."""
    found = {}
    for name in ("maestro-t.json", "evaluation.json"):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {folder} a finished `w2m2w maestro-t` run?")
        found[name] = json.loads(path.read_text())
    return {**found["maestro-t.json"], "evaluation": found["evaluation.json"]}


def check_runs(transcribed: dict, ground_truth: dict) -> None:
    """Refuse (RunsDiffer, every difference named) unless the runs trained alike on what they say."""
    problems = []
    for run, expected in ((transcribed, "transcribed"), (ground_truth, "ground-truth")):
        if run["composer"]["trained_on"] != expected:
            problems.append(f"the {expected} run was trained on {run['composer']['trained_on']}")
    for key in SAME_COMPOSER:
        if transcribed["composer"].get(key) != ground_truth["composer"].get(key):
            problems.append(f"composer {key}: {transcribed['composer'].get(key)!r} (transcribed run) against "
                            f"{ground_truth['composer'].get(key)!r} (ground-truth run)")
    if transcribed["transcriber"]["sha256_16"] != ground_truth["transcriber"]["sha256_16"]:
        problems.append("the runs' corpora come from different transcribers")
    for name in SCORED_ON:
        for key in SAME_SCORING:
            if transcribed["evaluation"][name].get(key, transcribed["evaluation"].get(key)) != \
                    ground_truth["evaluation"][name].get(key, ground_truth["evaluation"].get(key)):
                problems.append(f"scored on {name.replace('_', '-')} with another {key}")
    if problems:
        raise RunsDiffer("the two runs are not the same experiment but for the training MIDI: "
                         + "; ".join(problems))


def nll_table(transcribed: dict, ground_truth: dict) -> dict:
    """The 2 x 2 table: trained on (rows) x scored on (columns), and the gap against the target."""
    table = {}
    for trained_on, run in (("trained_on_ground_truth", ground_truth), ("trained_on_transcribed", transcribed)):
        table[trained_on] = {column: {"nll_per_event": run["evaluation"][name]["nll_per_event"],
                                      "interval_95": run["evaluation"][name]["nll_per_event_interval_95"],
                                      "pieces": run["evaluation"][name]["pieces"],
                                      "events": run["evaluation"][name]["events"]}
                             for name, column in SCORED_ON.items()}
    gap = (table["trained_on_transcribed"]["scored_on_ground_truth"]["nll_per_event"]
           - table["trained_on_ground_truth"]["scored_on_ground_truth"]["nll_per_event"])
    return {**table, "split": ground_truth["evaluation"]["split"],
            "chunk_tokens": ground_truth["evaluation"]["ground_truth"].get("chunk_tokens"),
            "gap_on_ground_truth": round(gap, 4), "target_gap": TARGET_GAP_NATS,
            "within_target": bool(gap <= TARGET_GAP_NATS)}


def composer_samples(checkpoint: Path, count: int, seconds: float, seed: int, temperature: float,
                     top_p: float) -> list[np.ndarray]:
    """COUNT pieces of SECONDS the composer writes from nothing, seeds SEED, SEED + 1, ...: note arrays."""
    from compose.composer import Composer
    from stages.io.midi import notes_from_sequence

    composer = Composer(checkpoint, seconds=seconds, max_tokens=max(4096, int(200 * seconds)), seed=seed,
                        temperature=temperature, top_p=top_p)
    return [notes_from_sequence(composer.continue_sequence(None, seed_offset=index))
            for index in tqdm(range(count), desc=f"sampling {checkpoint.parent.parent.name}", unit="piece")]


def sample_statistics(args, runs: dict[str, Path]) -> dict:
    """Item 2: the pianists' test MIDI, its transcription and each composer's samples, side by side."""
    pairs = paired_split(args.dataset, runs["transcribed"] / "corpus", "test")
    pianists, transcriptions = stretches_of(pairs, args.seconds)
    if not any(len(notes) for notes in pianists):
        raise ValueError(f"no test recording lasts {args.seconds} s: ask for shorter --seconds")
    figures = {"seconds": args.seconds, "test_stretches": len(pianists), "samples": args.samples,
               "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
               "pianists_test": pooled_statistics(pianists, [args.seconds] * len(pianists)),
               "transcribed_test": pooled_statistics(transcriptions, [args.seconds] * len(transcriptions))}
    for trained_on, folder in (("ground_truth", runs["ground_truth"]), ("transcribed", runs["transcribed"])):
        if args.samples:
            samples = composer_samples(folder / "composer" / "best.keras", args.samples, args.seconds, args.seed,
                                       args.temperature, args.top_p)
            figures[f"composer_trained_on_{trained_on}"] = pooled_statistics(samples, [args.seconds] * len(samples))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="the MAESTRO-layout dataset both runs used")
    parser.add_argument("--transcribed-run", type=Path, required=True, help="the run trained on transcriptions")
    parser.add_argument("--ground-truth-run", type=Path, required=True, help="the run with --train-on ground-truth")
    parser.add_argument("--samples", type=int, default=16, help="pieces each composer writes (0: none)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each piece and test stretch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.95)
    args = parser.parse_args(argv)

    runs = {"transcribed": args.transcribed_run, "ground_truth": args.ground_truth_run}
    try:
        transcribed, ground_truth = (read_run(folder) for folder in runs.values())
        check_runs(transcribed, ground_truth)
    except (FileNotFoundError, RunsDiffer) as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    pieces = classified(paired_split(args.dataset, runs["transcribed"] / "corpus", "train"))
    figures = {"runs": {"transcribed": str(runs["transcribed"]), "ground_truth": str(runs["ground_truth"]),
                        **{key: ground_truth["composer"][key] for key in SAME_COMPOSER},
                        "transcriber": ground_truth["transcriber"]["sha256_16"],
                        "transcription_accuracy": transcribed["corpus"].get("transcription_accuracy", {})},
               "nll": nll_table(transcribed, ground_truth),
               "samples": sample_statistics(args, runs),
               "train_errors": error_summary(pieces),
               "train_statistics": attribution(pieces)}
    from benchmarks.maestro_t_chart import plot

    record.RESULTS.mkdir(parents=True, exist_ok=True)
    chart = plot(record.RESULTS / f"{NAME}.png", figures)
    record.save(NAME, figures, notes=(
        "NLL per event in nats with 95% bootstrap intervals over pieces (each run's evaluation.json). Statistics: "
        "benchmarks.compose_samples.statistics of stretches laid end to end. Errors: transcribe.errors over the "
        "train split, shares of reference notes; train_statistics.*.by_kind: the shift of each statistic when only "
        f"that kind of error is put into the ground truth. Chart: {chart.name}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
