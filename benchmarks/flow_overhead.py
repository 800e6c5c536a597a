"""Wall time of the full Prefect flow on the bundled example, split by stage, and the
orchestration overhead: flow wall time minus the sum of the stages' own compute.

    python -m benchmarks.flow_overhead [--out runs/bench-flow]

OUT must not exist (a rerun would come from the cache). Writes benchmarks/results/flow_overhead.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from prefect import flow

from benchmarks import record
from flows.full import EXAMPLE_RECORDINGS, wave2midi2wave


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-flow"))
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: cached tasks would not be timed")
    # Ephemeral Prefect starts a temporary API server with a process's first flow run and keeps
    # it until the process ends: time that once, apart from the flow.
    start = time.perf_counter()
    flow(name="warm-up")(lambda: None)()
    server_start = time.perf_counter() - start
    start = time.perf_counter()
    summary = wave2midi2wave(input_dir=EXAMPLE_RECORDINGS, output_dir=args.out, seconds=args.seconds)
    wall = time.perf_counter() - start
    stages = summary["stage_seconds"]
    overhead = wall - sum(stages.values())
    record.save("flow_overhead", {
        "flow_wall_seconds": round(wall, 2),
        "stage_seconds": stages,
        "orchestration_overhead_seconds": round(overhead, 2),
        "overhead_fraction": round(overhead / wall, 4),
        "ephemeral_server_start_seconds": round(server_start, 2),
        "overhead_fraction_with_server_start": round((overhead + server_start) / (wall + server_start), 4),
    }, notes="Ephemeral Prefect (first run of a fresh output folder). The temporary API server that a process's "
             "first flow run starts is timed apart (a no-op flow first); against a running server (`w2m2w serve`) "
             "there is none. Stage seconds are each task call's wall time from the flow, so they include the "
             "task's own caching and result persistence.")


if __name__ == "__main__":
    main()
