"""Subsets of a split CSV (ASAP's columns): every Nth performance of each split, for renders of
part of a dataset, e.g. the WaveNet's training audio (`w2m2w maestro subset`).

Starting a split's picks at its Kth performance instead of its Nth gives disjoint parts: every 3rd
from the 1st, the 2nd and the 3rd are three disjoint thirds.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from stages.contract import write_text_atomic


def split_numbers(items: list[str]) -> dict[str, int]:
    """["train=3", ...] -> {"train": 3, ...}"""
    numbers = {}
    for item in items:
        split, separator, number = item.partition("=")
        if not separator or not number.strip().isdigit() or int(number) < 1:
            raise ValueError(f"expected SPLIT=N with N a positive whole number, not {item!r}")
        numbers[split.strip()] = int(number)
    return numbers


def subset_split(source: Path, out: Path, every: dict[str, int], first: dict[str, int] | None = None) -> int:
    """Write to `out` the rows of `source` that are the Kth, (K+N)th, ... performance of their split
    (N = `every[split]`, K = `first.get(split, N)`; splits not in `every` are left out), with the
    MIDI paths made absolute. Returns how many rows were kept."""
    first = {**every, **(first or {})}
    for split, start in first.items():
        if split in every and not 1 <= start <= every[split]:
            raise ValueError(f"the first pick of {split} must lie between 1 and {every[split]}, not {start}")
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{source} has no performances")
    seen: dict[str, int] = {}
    kept = []
    for row in rows:
        split = row["split"]
        seen[split] = seen.get(split, 0) + 1
        if split in every and seen[split] >= first[split] and (seen[split] - first[split]) % every[split] == 0:
            kept.append({**row, "midi_performance": str(source.resolve().parent / row["midi_performance"])})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(kept)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, buffer.getvalue())
    return len(kept)


def subset_from(settings) -> int:
    """`w2m2w maestro subset`."""
    kept = subset_split(settings.source, settings.out, split_numbers(settings.every), split_numbers(settings.first))
    print(f"{kept} performances -> {settings.out}")
    return 0
