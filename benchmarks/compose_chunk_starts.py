"""Where in a scored chunk a composer loses: NLL per event (nats) by position in the chunk, for
chunks that begin a piece and for chunks cut from its middle, on the validation subset that
`w2m2w train compose` selects on (22 pieces, 512-token chunks as compose/evaluate.py cuts them).

    python -m benchmarks.compose_chunk_starts OLD.keras [NEW.keras ...]
    git show 6a6b2ae:compose/checkpoints/default.keras > runs/default-75750.keras   # the composer before the H200
    python -m benchmarks.compose_chunk_starts runs/default-75750.keras compose/checkpoints/default.keras

A model trained only on crops that begin cleanly pays far more at the start of a chunk cut
mid-piece (note-offs of notes it never saw struck) than at a piece's start; compose/corpus.py's
crops are meant to close that gap. Writes benchmarks/results/compose_chunk_starts.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from compose.data import even_spread, load_pieces, piece_tokens
from compose.evaluate import scored_chunks
from compose.model import MusicTransformer  # noqa: F401  (registers the class for loading)

BANDS = ((0, 32), (32, 128), (128, 512))  # positions of the predicted token within its chunk


def nll_by_position(model: keras.Model, pieces: list[np.ndarray], length: int = 512) -> dict:
    sums: dict[str, list[float]] = {}
    for chunk, starts_piece, log_probs in scored_chunks(model, pieces, length):
        targets = chunk[1:]
        nll = -log_probs[np.arange(len(targets)), targets]
        for low, high in BANDS:
            key = f"{'piece start' if starts_piece else 'mid-piece'} chunks, tokens {low}-{high - 1}"
            total = sums.setdefault(key, [0.0, 0])
            total[0] += float(nll[low:high].sum())
            total[1] += len(nll[low:high])
    return {key: {"nll_per_event": round(total / count, 3), "events": count} for key, (total, count) in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    args = parser.parse_args()
    pieces = even_spread(load_pieces(args.asap, "validation", args.asap / "asap_split.csv"), 24)
    tokens = [piece_tokens(p) for p in pieces if p.notes]
    figures = {}
    for path in args.checkpoints:
        model = keras.saving.load_model(path, compile=False)
        figures[path.name if path.parent.name == "checkpoints" else str(path)] = nll_by_position(model, tokens)
        print(path, figures, flush=True)
    record.save("compose_chunk_starts", figures, notes=f"{len(tokens)} validation pieces (ASAP), 512-token chunks")


if __name__ == "__main__":
    main()
