"""Write a split CSV holding every Nth performance of each split of another (paths made absolute),
for renders of part of a dataset, e.g. the WaveNet's training audio:

    python scripts/subset_split.py ../shared/data/asap/asap_split.csv data/synth_subset.csv --every train=6 validation=4

`--first train=1` starts a split's picks at its 1st performance instead of its Nth, so that
--every train=3 with --first train=1, 2 and 3 gives three disjoint thirds.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="split CSV (ASAP's columns; paths relative to it)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--every", nargs="+", default=["train=6", "validation=4"],
                        help="SPLIT=N: keep the Nth, 2Nth, ... performance of SPLIT; splits not named are left out")
    parser.add_argument("--first", nargs="+", default=[],
                        help="SPLIT=K: keep the Kth, (K+N)th, ... performance of SPLIT instead (1 <= K <= N)")
    args = parser.parse_args()
    every = _split_numbers(args.every)
    first = {**every, **_split_numbers(args.first)}
    with args.source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    seen: dict[str, int] = {}
    kept = []
    for row in rows:
        split = row["split"]
        seen[split] = seen.get(split, 0) + 1
        if split in every and seen[split] >= first[split] and (seen[split] - first[split]) % every[split] == 0:
            kept.append({**row, "midi_performance": str(args.source.resolve().parent / row["midi_performance"])})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    print(f"{len(kept)} performances -> {args.out}")


def _split_numbers(items: list[str]) -> dict[str, int]:
    """["train=3", ...] -> {"train": 3, ...}"""
    return {split: int(n) for split, n in (item.split("=") for item in items)}


if __name__ == "__main__":
    main()
