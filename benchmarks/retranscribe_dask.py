"""Re-transcription on a Dask cluster of 1 and of 2 worker processes on this machine, and what
Dask's orchestration costs per file.

    python -m benchmarks.retranscribe_dask [--dataset data/asap-maestro] [--split test] [--pieces 8]
                                           [--clip-seconds 30]

Clips the split's first N recordings to 30 s (a dataset of just those, in a scratch folder), then
for 1 and 2 workers, each one process with one thread and one TensorFlow core (as docs/dask.md
advises), starts a `distributed.LocalCluster` on 127.0.0.1, imports TensorFlow in every worker (a
cluster's workers outlive one job), and re-transcribes them with `--runner=DaskRunner`. The
scheduler's task stream gives the seconds the workers spent computing (the model loads included)
and the span from the first task's start to the last one's end. Per file, the overhead is the
workers' time in that span not spent computing (scheduling, moving data, waiting), against a
file's computing; once per job, the wall time outside the span (reading the metadata, building and
sending the graph, the summary). Writes benchmarks/results/retranscribe_dask.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import soundfile

from batch import retranscribe
from benchmarks import record
from maestro.metadata import Dataset, write_metadata
from transcribe.transcriber import DEFAULT_CHECKPOINT

ONE_CORE = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def clipped_dataset(source: Path, root: Path, split: str, pieces: int, seconds: float) -> list:
    """The split's first `pieces` recordings, their audio cut to `seconds`, as a dataset at `root`."""
    dataset = Dataset.open(source)
    records = []
    for record_ in dataset.select(splits=[split])[:pieces]:
        audio, rate = soundfile.read(dataset.audio_path(record_))
        (root / record_.audio_filename).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(root / record_.audio_filename, audio[: int(seconds * rate)], rate)
        shutil.copyfile(dataset.midi_path(record_), root / record_.midi_filename)
        records.append(dataclasses.replace(record_, duration=min(seconds, len(audio) / rate)))
    write_metadata(root, records)
    return records


def warm_up() -> None:
    import keras  # noqa: F401

    import transcribe.onsets_frames.model  # noqa: F401


def run_on(workers: int, root: Path, out: Path) -> dict:
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, env=ONE_CORE) as cluster, \
            distributed.Client(cluster) as client:
        client.run(warm_up)
        with distributed.get_task_stream(client) as stream:
            start = time.perf_counter()
            summary = retranscribe.run(str(root), str(out), str(DEFAULT_CHECKPOINT), beam_args=[
                "--runner=DaskRunner", f"--dask_client_address={cluster.scheduler_address}"])
            wall = time.perf_counter() - start
    parts = [part for task in stream.data for part in task["startstops"]]
    computing = sum(part["stop"] - part["start"] for part in parts if part["action"] == "compute")
    span = max(part["stop"] for part in parts) - min(part["start"] for part in parts)
    files = summary["transcribed"]
    per_file = (span * workers - computing) / files  # workers idle or moving data between the first and last task
    return {"wall_seconds": round(wall, 2), "computing_seconds": round(computing, 2),
            "files": files, "failed": summary["failed_count"],
            "computing_seconds_per_file": round(computing / files, 3),
            "job_seconds_outside_the_tasks": round(wall - span, 2),
            "overhead_seconds_per_file": round(per_file, 3),
            "overhead_share_of_a_files_work": round(per_file / (computing / files), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/asap-maestro"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--pieces", type=int, default=8)
    parser.add_argument("--clip-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "subset"
        records = clipped_dataset(args.dataset, root, args.split, args.pieces, args.clip_seconds)
        audio_seconds = sum(r.duration for r in records)
        figures = {"recordings": len(records), "audio_seconds": round(audio_seconds, 1)}
        for workers in (1, 2):
            result = run_on(workers, root, Path(scratch) / f"out-{workers}")
            result["audio_seconds_per_second"] = round(audio_seconds / result["wall_seconds"], 1)
            figures[f"workers_{workers}"] = result
    figures["speedup_2_over_1"] = round(figures["workers_1"]["wall_seconds"] / figures["workers_2"]["wall_seconds"], 2)
    record.save("retranscribe_dask", figures, notes=(
        "distributed.LocalCluster on 127.0.0.1, one process, one thread and one TensorFlow core per worker, "
        "TensorFlow imported in the workers first; wall time includes the pipeline's construction, the model's "
        "loading per worker and the summary. Per-file overhead: workers x the tasks' span - computing, per file."))


if __name__ == "__main__":
    main()
