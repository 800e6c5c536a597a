"""Does conditioning steer the composer? The first 10 s of ASAP test pieces are continued for 20 s
by a conditioned composer, unconditioned and conditioned on each of two composers (Chopin and Bach
by default), and the new music's statistics (those of benchmarks/compose_samples.py: notes per
second, note lengths, polyphony, pitch, velocity) are compared with the pianists' in those
composers' training pieces (seconds 10-30 of each performance). With --densities, the same
primers are also continued conditioned on each of those note densities (notes per second): the
new music's own density should follow.

    python -m benchmarks.compose_conditioning --checkpoint runs/conditioned/mean.keras [--pieces 12]
                                              [--composers Chopin,Bach] [--densities 6,20] [--seed 0]
                                              [--from-nothing]

The distance of a set of samples to a composer is the root mean square, over the statistics, of
the difference of the pooled statistic to the composer's, each divided by that statistic's spread
(standard deviation) over the test pieces' real 20 s stretches. Conditioning works in the
intended direction when the samples conditioned on A are nearer A (relative to B) than the
unconditioned or B-conditioned samples are. Writes benchmarks/results/compose_conditioning.json
(with --from-nothing, new pieces without a primer: compose_conditioning_from_nothing.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks import record
from benchmarks.compose_samples import NEW_S, PRIMER_S, _pooled, _rounded, statistics
from benchmarks.paths import SHARED_DATA
from compose.data import load_labelled_pieces, window
from compose.stage import Composer, primer_tokens
from compose.tokens import decode
from stages.io.midi import apply_sustain, notes_from_sequence

COMPARED = ("notes_per_second", "median_note_s", "p95_note_s", "mean_polyphony", "pitch_mean", "pitch_std",
            "velocity_mean")


def real_stretches(pieces, count: int) -> list[np.ndarray]:
    """Seconds 10-30 of at most `count` performances (evenly spread) long enough to hold them."""
    long_enough = [p for p in pieces if p.total_time >= PRIMER_S + NEW_S]
    chosen = long_enough[:: max(1, len(long_enough) // count)][:count]
    return [notes_from_sequence(window(apply_sustain(p), PRIMER_S, PRIMER_S + NEW_S)) for p in chosen]


def distance(figures: dict, reference: dict, spread: dict) -> float:
    return float(np.sqrt(np.mean([((figures[k] - reference[k]) / spread[k]) ** 2 for k in COMPARED])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--checkpoint", type=Path, required=True, help="a composer trained with conditioning")
    parser.add_argument("--pieces", type=int, default=12, help="test pieces to continue, evenly spread")
    parser.add_argument("--composers", default="Chopin,Bach", help="two of ASAP's composers")
    parser.add_argument("--reference-pieces", type=int, default=24, help="training performances per composer")
    parser.add_argument("--densities", default="",
                        help="also condition on these notes per second, comma-separated (e.g. 6,20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-nothing", action="store_true", help="write new pieces, no primer (as many as --pieces)")
    args = parser.parse_args()
    first, second = args.composers.split(",")
    csv_path = args.asap / "asap_split.csv"

    train, train_composers = load_labelled_pieces(args.asap, "train", csv_path)
    references = {name: real_stretches([p for p, c in zip(train, train_composers) if c == name], args.reference_pieces)
                  for name in (first, second)}
    test = [apply_sustain(p) for p in load_labelled_pieces(args.asap, "test", csv_path)[0]]
    test_real = real_stretches(test, 10_000)
    spread = {k: float(np.std([statistics(s, NEW_S)[k] for s in test_real if len(s)])) for k in COMPARED}
    primers = [primer_tokens(window(p, 0.0, PRIMER_S)) for p in test if p.total_time >= PRIMER_S + NEW_S]
    primers = primers[:: max(1, len(primers) // args.pieces)][: args.pieces]
    if args.from_nothing:
        primers = [np.zeros(0, np.int32)] * args.pieces

    pianists = {name: _pooled(stretches, NEW_S) for name, stretches in references.items()}
    figures = {"checkpoint": args.checkpoint.name, "pieces": len(primers), "primer_s": PRIMER_S, "new_s": NEW_S,
               "reference_performances": {name: len(s) for name, s in references.items()},
               "pianists": {name: _rounded(stats) for name, stats in pianists.items()}, "sampled": {}}
    conditions = {"unconditioned": {}, first: {"composer": first}, second: {"composer": second}}
    conditions.update({f"{float(d):g} notes/s": {"notes_per_second": float(d)}
                       for d in args.densities.split(",") if d})
    for label, steering in conditions.items():
        composer = Composer(args.checkpoint, seconds=NEW_S, seed=args.seed, **steering)
        sampled = []
        for index, primer in enumerate(tqdm(primers, desc=label, unit="piece")):
            sampling = {k: v for k, v in composer.settings.sampler_arguments().items() if k != "seed"}
            new = composer.sampler.generate(primer, seed=args.seed + index, conditioning=composer.conditioning,
                                            **sampling)
            sampled.append(notes_from_sequence(decode(new)))
        stats = _pooled(sampled, NEW_S)
        figures["sampled"][label] = {
            **_rounded(stats), f"distance_to_{first}": round(distance(stats, pianists[first], spread), 3),
            f"distance_to_{second}": round(distance(stats, pianists[second], spread), 3)}
        print(label, figures["sampled"][label], flush=True)
    margin = {label: round(entry[f"distance_to_{first}"] - entry[f"distance_to_{second}"], 3)
              for label, entry in figures["sampled"].items()}
    figures[f"distance_to_{first}_minus_to_{second}"] = margin  # lower: nearer the first composer
    figures["statistic_spread_over_test_stretches"] = _rounded(spread)
    what = (f"{len(primers)} pieces written from nothing" if args.from_nothing
            else f"The same {len(primers)} test primers")
    record.save("compose_conditioning" + ("_from_nothing" if args.from_nothing else ""), figures, notes=(
        f"{what} continued {len(conditions)} ways (top-p 0.95, temperature 1, in the grammar); "
        f"pianists: seconds 10-30 of {args.reference_pieces} training performances per composer. Distances: RMS over "
        f"{', '.join(COMPARED)} of the difference in units of each statistic's spread over the test pieces' real "
        "20 s stretches."))


if __name__ == "__main__":
    main()
