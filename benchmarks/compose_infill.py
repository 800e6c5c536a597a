"""Does infilling lead into the music after the gap? On held-out ASAP performances, a gap of
`--gap` seconds is cut at `--start` s of each and filled (`compose/infill.py`); the music after it
(5 s) is then scored given the music before and the gap, in nats per event:

- `one_sample`: the first candidate alone (what a plain continuation would write);
- `best_of_N`: the candidate infilling keeps (argmax over N of the likelihood of what follows);
- `candidates_mean`: all N candidates' mean;
- `original`: the performer's own notes in the gap (what a perfect infilling would approach).

Lower is better; the gap between `one_sample` and `best_of_N` is what choosing buys, and
`original` bounds it. Also how many notes each gap holds against the original's.

    python -m benchmarks.compose_infill [--checkpoint compose/checkpoints/default.keras] [--pieces 12]
                                        [--start 20] [--gap 6] [--candidates 8]

Writes benchmarks/results/compose_infill.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from compose.composer import DEFAULT_CHECKPOINT
from compose.data import load_labelled_pieces, window
from compose.infill import AFTER_SECONDS, AFTER_SHARE, clipped, completed, context_tokens, suffix_log_likelihoods
from compose.sample import Sampler
from compose.tokens import decode, encode
from stages.io.midi import apply_sustain

CONTEXT_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--split", default="test")
    parser.add_argument("--pieces", type=int, default=12, help="performances, evenly spread over the split")
    parser.add_argument("--start", type=float, default=20.0, help="the gap's start, seconds into each performance")
    parser.add_argument("--gap", type=float, default=6.0, help="the gap's length, seconds")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pieces = [apply_sustain(p) for p in load_labelled_pieces(args.asap, args.split, args.asap / "asap_split.csv")[0]]
    end = args.start + args.gap
    pieces = [p for p in pieces if p.total_time >= end + AFTER_SECONDS]
    pieces = pieces[:: max(1, len(pieces) // args.pieces)][: args.pieces]
    sampler = Sampler(keras.saving.load_model(args.checkpoint, compile=False))
    lead = np.zeros(0, np.int32)
    per_event = {"one_sample": [], f"best_of_{args.candidates}": [], "candidates_mean": [], "original": []}
    notes = {"chosen": [], "original": []}
    for index, piece in enumerate(tqdm(pieces, desc="infilling", unit="piece")):
        context = context_tokens(piece, args.start, CONTEXT_S)
        after = encode(window(piece, end, end + AFTER_SECONDS), sustain=False)
        events = min(len(after), sampler.model.config.sequence_length // AFTER_SHARE)
        gaps = [completed(sampler.generate(context, seconds=args.gap, seed=args.seed + 100 * index + k,
                                           stop_at_end=False, top_p=0.95), args.gap, context)
                for k in range(args.candidates)]
        # The performer's gap as the model would read it: its notes released by the gap's end.
        original = completed(encode(clipped(window(piece, args.start, end), args.gap), sustain=False), args.gap,
                             context)
        scores = np.array(suffix_log_likelihoods(sampler, lead, context, [*gaps, original], after)) / -events
        candidates, real = scores[:-1], scores[-1]
        per_event["one_sample"].append(candidates[0])
        per_event[f"best_of_{args.candidates}"].append(candidates.min())
        per_event["candidates_mean"].append(candidates.mean())
        per_event["original"].append(real)
        notes["chosen"].append(len(decode(gaps[int(np.argmin(candidates))]).notes))
        notes["original"].append(len(window(piece, args.start, end).notes))

    figures = {"checkpoint": args.checkpoint.name, "split": args.split, "pieces": len(pieces),
               "gap_s": [args.start, end], "context_s": CONTEXT_S, "after_s": AFTER_SECONDS,
               "candidates": args.candidates,
               "nats_per_event_after_the_gap": {k: round(float(np.mean(v)), 4) for k, v in per_event.items()},
               "nats_per_event_after_the_gap_by_piece": {k: [round(float(x), 4) for x in v]
                                                         for k, v in per_event.items()},
               "best_beats_one_sample_in_pieces": int(np.sum(np.array(per_event[f"best_of_{args.candidates}"])
                                                              < np.array(per_event["one_sample"]))),
               "notes_in_the_gap_mean": {k: round(float(np.mean(v)), 1) for k, v in notes.items()}}
    record.save("compose_infill", figures, notes="Negative log-likelihood of the 5 s after the gap, per event, "
                "given the 10 s before and the gap (compose/infill.py suffix_log_likelihoods; the model's raw "
                "probabilities, the context cut from the left to fit its window). Candidates sampled at top-p 0.95, "
                "temperature 1, each ending at the gap's end with every key released; the original gap released "
                "there too.")
    print(figures["nats_per_event_after_the_gap"])


if __name__ == "__main__":
    main()
