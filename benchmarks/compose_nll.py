"""Mean negative log-likelihood per event (nats) on the ASAP test split for the shipped Music
Transformer and both baselines (absolute positions, LSTM), trained the same way on the same data:
the comparison of Huang et al. 2018. Every test piece is cut into non-overlapping chunks
(`compose/evaluate.py`), each scored on its own: of 2048 tokens as the paper scores, and of 512,
the models' training length (what validation selects on; the figure of earlier records). The
Transformers attend to at most the latest 512 positions in each layer (their attention span).
Each figure also comes renormalized over the events the grammar of encoded music allows
(`compose/grammar.py`; what the sampler draws from): `nll_per_event_in_grammar`.

    python -m benchmarks.compose_nll [--asap ../shared/data/asap] [--chunk-lengths 2048,512] [--rescore]
                                     [--models relative,absolute,lstm]

Writes benchmarks/results/compose_nll.json. A model whose checkpoint (by content), split and chunk
lengths match the last record keeps its figures from there (marked with the record's date) unless
--rescore is given (it scores the chosen models again, after a change to the scoring): retraining
one model re-scores only that one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras

from benchmarks import record
from compose.data import load_pieces
from compose.evaluate import nll_per_event
from compose.stage import DEFAULT_CHECKPOINT
from stages.cli import SHARED_DATA
from stages.contract import content_id

CHECKPOINTS = DEFAULT_CHECKPOINT.parent
MODELS = {"relative (Music Transformer)": DEFAULT_CHECKPOINT,
          "absolute (Transformer baseline)": CHECKPOINTS / "baseline-absolute.keras",
          "lstm (Performance-RNN baseline)": CHECKPOINTS / "baseline-lstm.keras"}


NOTES = ("ASAP performances (MIDI), split by piece; the sustain pedal applied before encoding. The shipped "
         "Music Transformer's training (75,750 steps of 8 x 512 tokens on a CPU, then 11,100 of 64 x 512 on an "
         "H200, every round from the weights before it) is listed in compose/checkpoints/default.json (trained_with), "
         "its earlier figures in the README; at 1,750 steps it scored 3.082 in 512-token chunks. The "
         "absolute-position baseline shares its first 1,750 steps' data, crops (cut from note windows), augmentation, "
         "optimizer and schedule for 1,750 steps; the LSTM baseline was trained with the earlier default (2,000 "
         "steps of 16 x 512 tokens, 2.3x the tokens of 1,750 steps). Both Transformers attend to the latest 512 "
         "positions in each layer; the absolute baseline never saw positions past 512.")


def previous_scores(split: str, pieces: int, lengths: list[int]) -> dict:
    """The last record's figures per model label, where they were scored the way this run scores."""
    try:
        record_ = json.loads((record.RESULTS / "compose_nll.json").read_text())
    except (OSError, ValueError):
        return {}
    figures = record_.get("figures", {})
    same_protocol = (figures.get("split") == split and figures.get("pieces") == pieces
                     and figures.get("chunk_tokens") == lengths[0]
                     and all("nll_per_event_in_grammar" in entry and all(f"chunks_of_{n}" in entry for n in lengths[1:])
                             for entry in figures.values() if isinstance(entry, dict)))
    if not same_protocol:
        return {}
    return {label: {**entry, "scored_on": entry.get("scored_on", record_.get("date"))}
            for label, entry in figures.items() if isinstance(entry, dict)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--split", default="test")
    parser.add_argument("--chunk-lengths", default="2048,512", help="comma-separated; the first is the headline")
    parser.add_argument("--rescore", action="store_true", help="score the chosen models, also those the last "
                                                                  "record already scored with the same checkpoint")
    parser.add_argument("--models", default="relative,absolute,lstm",
                        help="comma-separated architectures to score; the others keep the last record's figures")
    args = parser.parse_args()
    chosen = args.models.split(",")
    lengths = [int(n) for n in args.chunk_lengths.split(",")]
    pieces = load_pieces(args.asap, args.split, args.asap / "asap_split.csv")
    figures = {"split": args.split, "pieces": len(pieces), "chunk_tokens": lengths[0]}
    previous = previous_scores(args.split, len(pieces), lengths)
    for label, path in MODELS.items():
        unchanged = (not args.rescore and label in previous
                     and previous[label].get("checkpoint_sha256_16") == content_id(path))
        if unchanged or label.split()[0] not in chosen:
            if label in previous:
                figures[label] = previous[label]
                print(label, "kept from", previous[label]["scored_on"], figures[label]["nll_per_event"], flush=True)
            continue
        model = keras.saving.load_model(path, compile=False)
        figures[label] = {"checkpoint": path.name, "checkpoint_sha256_16": content_id(path),
                          "parameters": model.count_params(), "trained_on_tokens": model.config.sequence_length,
                          "attention_span": (model.config.attention_span
                                             if model.config.architecture != "lstm" else None)}
        for length in lengths:
            started = time.perf_counter()
            result = nll_per_event(model, pieces, length=length)
            scored = {"nll_per_event": round(result["nll_per_event"], 4),
                      "nll_per_event_in_grammar": round(result["nll_per_event_in_grammar"], 4),
                      "events": result["events"],
                      "seconds": round(time.perf_counter() - started, 1)}
            figures[label].update(scored if length == lengths[0] else {f"chunks_of_{length}": scored})
            print(label, length, scored, flush=True)
    record.save("compose_nll", figures, notes=NOTES)


if __name__ == "__main__":
    main()
