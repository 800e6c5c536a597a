"""Preprocessing throughput: seconds of audio turned into TFRecord examples per wall-clock second
by `w2m2w maestro preprocess` (Beam, local FnApiRunner on all cores unless Beam options say
otherwise).

    python -m benchmarks.preprocess_throughput ROOT OUT [--splits train] [beam options...]

OUT must not exist. Writes benchmarks/results/preprocess_<splits>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import record
from maestro import preprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("out", type=Path)
    parser.add_argument("--splits", default="train,validation,test")
    args, beam_args = parser.parse_known_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: a throughput figure needs a fresh run")
    splits = tuple(args.splits.split(","))
    start = time.perf_counter()
    summary = preprocess.run(args.root, str(args.out), preprocess.PreprocessConfig(splits=splits), beam_args)
    wall = time.perf_counter() - start
    audio_seconds = sum(s["audio_seconds"] for s in summary["splits"].values())
    output_bytes = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    record.save(f"preprocess_{'_'.join(splits)}", {
        "recordings": sum(s["recordings"] for s in summary["splits"].values()),
        "transcription_examples": sum(s["transcription_examples"] for s in summary["splits"].values()),
        "failed_files": summary["failed_count"],
        "audio_hours": round(audio_seconds / 3600, 2),
        "output_gb": round(output_bytes / 1e9, 2),
        "wall_seconds": round(wall, 1),
        "audio_seconds_per_second": round(audio_seconds / wall, 1),
        "beam_args": beam_args,
    }, notes="Beam FnApiRunner, multi_processing on all cores (the default of `w2m2w maestro preprocess`).")


if __name__ == "__main__":
    main()
