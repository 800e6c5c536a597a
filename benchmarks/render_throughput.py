"""Render throughput: seconds of audio rendered per wall-clock second by `w2m2w maestro render`.

    python -m benchmarks.render_throughput OUT_ROOT [--splits train] [--workers N]

Renders the ASAP performances (../shared/data/asap) into OUT_ROOT from scratch (OUT_ROOT must
not exist) and writes benchmarks/results/render_<splits>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from maestro.metadata import read_metadata
from maestro.render import render_dataset
from stages.cli import cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_root", type=Path)
    parser.add_argument("--midi-dir", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--split-csv", type=Path, default=SHARED_DATA / "asap" / "asap_split.csv")
    parser.add_argument("--splits", default="train,validation,test")
    parser.add_argument("--workers", type=int, default=cores())
    args = parser.parse_args()
    if args.out_root.exists():
        parser.error(f"{args.out_root} exists: a throughput figure needs a fresh render")
    splits = tuple(args.splits.split(","))
    start = time.perf_counter()
    report = render_dataset(args.midi_dir, args.out_root, args.split_csv, workers=args.workers, splits=splits)
    wall = time.perf_counter() - start
    records = read_metadata(args.out_root / "maestro-v3.0.0.csv")
    audio_seconds = sum(r.duration for r in records)
    record.save(f"render_{'_'.join(splits)}", {
        "files_rendered": len(report.written),
        "files_failed": len(report.failed),
        "audio_hours": round(audio_seconds / 3600, 2),
        "wall_seconds": round(wall, 1),
        "audio_seconds_per_second": round(audio_seconds / wall, 1),
        "workers": args.workers,
        "sample_rate_hz": 16000,
    }, notes="FluidSynth CLI renders + augmentation (train) + 16-bit WAV write; includes metadata.")


if __name__ == "__main__":
    main()
