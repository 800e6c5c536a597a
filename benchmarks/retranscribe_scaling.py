"""How batch re-transcription throughput grows from 1 to 2 Beam workers on this machine.

    python -m benchmarks.retranscribe_scaling [--dataset data/asap-maestro] [--pieces 8]

Re-transcribes the first N test recordings into fresh folders with --direct_num_workers=1 and =2
(multi-processing FnApiRunner) and writes benchmarks/results/retranscribe_scaling.json.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from batch import retranscribe
from benchmarks import record
from maestro.metadata import Dataset, write_metadata
from transcribe.transcriber import DEFAULT_CHECKPOINT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/asap-maestro"))
    parser.add_argument("--pieces", type=int, default=8)
    args = parser.parse_args()
    dataset = Dataset.open(args.dataset)
    chosen = dataset.select(splits=["test"])[: args.pieces]
    audio_seconds = sum(r.duration for r in chosen)
    figures = {"recordings": len(chosen), "audio_seconds": round(audio_seconds, 1)}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "subset"  # a dataset of just these recordings (copies: links would escape it)
        for record_ in chosen:
            for name in (record_.audio_filename, record_.midi_filename):
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(args.dataset / name, root / name)
        write_metadata(root, chosen)
        for workers in (1, 2):
            out = Path(scratch) / f"out-{workers}"
            start = time.perf_counter()
            summary = retranscribe.run(str(root), str(out), str(DEFAULT_CHECKPOINT), beam_args=[
                f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"])
            wall = time.perf_counter() - start
            figures[f"workers_{workers}"] = {"wall_seconds": round(wall, 1),
                                             "audio_seconds_per_second": round(audio_seconds / wall, 1),
                                             "failed": summary["failed_count"]}
            shutil.rmtree(out)
    figures["speedup_2_over_1"] = round(figures["workers_1"]["wall_seconds"] / figures["workers_2"]["wall_seconds"], 2)
    record.save("retranscribe_scaling", figures, notes="Local FnApiRunner, multi-processing; includes pipeline "
                "start-up and model loading per worker.")


if __name__ == "__main__":
    main()
