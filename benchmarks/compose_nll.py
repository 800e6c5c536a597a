"""Mean negative log-likelihood per event (nats) on the ASAP test split for the shipped Music
Transformer and both baselines (absolute positions, LSTM), trained the same way on the same data:
the comparison of Huang et al. 2018. Every test piece is cut into non-overlapping chunks
(`compose/evaluate.py`), each scored on its own: of 2048 tokens as the paper scores, and of 512,
the models' training length (what validation selects on; the figure of earlier records). The
Transformers attend to at most the latest 512 positions in each layer (their attention span).
The headline is the raw probability's NLL (`nll_per_event`, not renormalized), with a bootstrap
95% interval over the pieces (`nll_per_event_interval_95`: performances drawn with replacement)
and a wider one over the works (`..._by_work`: a work's performances drawn together, as they are
not independent). Each figure also comes renormalized over the events the grammar of encoded
music allows (`compose/grammar.py`; what the sampler draws from): `nll_per_event_in_grammar`
(not with --raw-only, which is faster).

    python -m benchmarks.compose_nll [--asap ../shared/data/asap] [--chunk-lengths 2048,512] [--rescore]
                                     [--models relative,absolute,lstm] [--max-pieces N] [--raw-only]

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
from benchmarks.paths import SHARED_DATA
from compose.data import even_spread, load_labelled_pieces, piece_tokens
from compose.evaluate import bootstrap_interval, token_nll_per_event
from compose.stage import DEFAULT_CHECKPOINT
from maestro.render import read_split_file
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


def previous_scores(split: str, pieces: int, lengths: list[int], raw_only: bool) -> dict:
    """The last record's figures per model label, where they were scored the way this run scores."""
    try:
        record_ = json.loads((record.RESULTS / "compose_nll.json").read_text())
    except (OSError, ValueError):
        return {}
    figures = record_.get("figures", {})
    same_protocol = (figures.get("split") == split and figures.get("pieces") == pieces
                     and figures.get("chunk_tokens") == lengths[0]
                     and all("nll_per_event_interval_95" in entry and (raw_only or "nll_per_event_in_grammar" in entry)
                             and all(f"chunks_of_{n}" in entry for n in lengths[1:])
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
    parser.add_argument("--max-pieces", type=int, help="an even spread of this many pieces of the split (default: all)")
    parser.add_argument("--raw-only", action="store_true", help="no figure in the grammar (faster)")
    args = parser.parse_args()
    chosen = args.models.split(",")
    lengths = [int(n) for n in args.chunk_lengths.split(",")]
    csv_path = args.asap / "asap_split.csv"
    entries = read_split_file(csv_path)
    works = [f"{e.composer}: {e.title}" for _, e in sorted((p, e) for p, e in entries.items() if e.split == args.split)]
    pieces, _ = load_labelled_pieces(args.asap, args.split, csv_path)
    kept = even_spread([i for i, p in enumerate(pieces) if p.notes], args.max_pieces)
    tokens, works = [piece_tokens(pieces[i]) for i in kept], [works[i] for i in kept]
    figures = {"split": args.split, "pieces": len(tokens), "works": len(set(works)), "chunk_tokens": lengths[0]}
    previous = previous_scores(args.split, len(tokens), lengths, args.raw_only)
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
            result = token_nll_per_event(model, tokens, length, in_grammar=not args.raw_only, per_piece=True)
            scored = {"nll_per_event": round(result["nll_per_event"], 4),
                      "nll_per_event_interval_95": _rounded(bootstrap_interval(result["piece_nll"],
                                                                               result["piece_events"])),
                      "nll_per_event_interval_95_by_work": _rounded(bootstrap_interval(
                          result["piece_nll"], result["piece_events"], groups=works))}
            if not args.raw_only:
                scored["nll_per_event_in_grammar"] = round(result["nll_per_event_in_grammar"], 4)
            scored.update(events=result["events"], seconds=round(time.perf_counter() - started, 1))
            figures[label].update(scored if length == lengths[0] else {f"chunks_of_{length}": scored})
            print(label, length, scored, flush=True)
    subset = (f" Scored on an even spread of {len(tokens)} of the split's {len(pieces)} performances (--max-pieces)."
              if len(tokens) < len(pieces) else "")
    record.save("compose_nll", figures, notes=NOTES + subset)


def _rounded(interval: tuple[float, float]) -> list[float]:
    return [round(bound, 4) for bound in interval]


if __name__ == "__main__":
    main()
