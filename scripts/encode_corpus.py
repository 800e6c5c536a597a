"""Encode a split of MIDI pieces into one token file, for training a composer where note-seq and
TensorFlow are not installed (an accelerator machine: see scripts/train_composer_tokens.py).

    python scripts/encode_corpus.py ../shared/data/asap OUT.npz --split-csv ../shared/data/asap/asap_split.csv

An OUT ending in `.npz.xz` is the same file compressed with LZMA (a third of the size).

Every piece is encoded whole (sustain applied, ending with END) once per time stretch; the
transposition part of the augmentation is left to the trainer, which shifts note tokens. The
file holds `tokens` (uint16, the pieces one after another), `starts` (where each piece begins)
and `stretch` (each piece's stretch factor).
"""

from __future__ import annotations

import argparse
import lzma
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compose.corpus import token_file_bytes  # noqa: E402
from compose.data import STRETCHES, encode_pieces, load_pieces  # noqa: E402
from stages.contract import write_bytes_atomic  # noqa: E402


def encode_stretched(args) -> list[np.ndarray]:
    pieces, stretch = args
    return encode_pieces(pieces, [stretch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a folder of MIDI (or a `w2m2w maestro preprocess` output)")
    parser.add_argument("out", type=Path, help="the .npz to write")
    parser.add_argument("--split-csv", type=Path, help="the split file choosing the pieces")
    parser.add_argument("--split", default="train")
    parser.add_argument("--stretches", type=float, nargs="+", default=STRETCHES)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: not overwriting it")

    pieces = load_pieces(args.source, args.split, args.split_csv)
    with ProcessPoolExecutor(args.workers) as pool:
        encoded = list(pool.map(encode_stretched, [(pieces, s) for s in args.stretches]))
    pieces = [piece for variant in encoded for piece in variant]
    stretch = np.repeat(np.asarray(args.stretches, np.float32), [len(v) for v in encoded])
    data = token_file_bytes(pieces, stretch)
    if args.out.suffix == ".xz":  # a third of zlib's size: what fits through a small transfer limit
        data = lzma.compress(data, preset=6)
    write_bytes_atomic(args.out, data)
    print(f"{len(encoded[0])} pieces x {len(args.stretches)} stretches: {sum(map(len, pieces)):,} tokens -> {args.out} "
          f"({args.out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
