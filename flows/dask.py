"""A stage of the flow fanned out over a Dask cluster: one task per input file, on the cluster's
workers through prefect-dask's DaskTaskRunner.

`wave2midi2wave(..., dask_address="HOST:PORT")` (`w2m2w full IN OUT --dask HOST:PORT`) runs each
model stage this way; the stages still follow each other, as locally, and the report runs in the
flow's process once they are done. Each file's task is the stage's own task (`flows.tasks`) on
that one file, so it is cached on that file's contents, retried alone, and writes the same output
file as the stage on the whole folder would (an input `a/b.flac` -> `audio/a/b.wav`). A worker
keeps each model loaded across its files (`flows.tasks.loaded`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows import tasks
from stages.io.audio import AUDIO_SUFFIXES
from stages.io.midi import MIDI_SUFFIXES

# The task that runs each stage on one file, and the files it reads. Preprocessing one file
# needs no Beam pipeline: `normalize` is the same stage, run in the worker.
STAGE_TASKS = {"preprocess": tasks.normalize, "transcribe": tasks.transcribe, "compose": tasks.compose,
               "synthesize": tasks.synthesize}
INPUT_SUFFIXES = {"preprocess": AUDIO_SUFFIXES, "transcribe": AUDIO_SUFFIXES, "compose": MIDI_SUFFIXES,
                  "synthesize": MIDI_SUFFIXES}


def input_files(stage: str, folder: Path) -> list[Path]:
    """The files of `folder` (searched recursively) that `stage` reads, as the stage finds them."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in INPUT_SUFFIXES[stage] and p.is_file()
                  and not p.name.startswith("."))


def merge(stage: str, out: Path, reports: list[dict]) -> dict:
    """One report for the stage, as `StageReport.to_dict()` of a run on the whole folder."""
    return {"stage": reports[0]["stage"] if reports else stage, "output_dir": str(out),
            **{key: [item for report in reports for item in report[key]] for key in ("written", "skipped", "failed")}}


@flow(name="stage-on-dask", log_prints=True)
def fan_out(stage: str, inputs: Path, out: Path, settings: dict) -> dict:
    """Submit `stage` once per input file (to the flow's task runner), wait for all, merge."""
    inputs, out = Path(inputs), Path(out)
    task = STAGE_TASKS[stage]
    if not out.exists():  # cached results are worth only as much as their files (as flows.full's)
        task = task.with_options(refresh_cache=True)
    futures = []
    for source in input_files(stage, inputs):
        folder = out if inputs.is_file() else out / source.parent.relative_to(inputs)
        futures.append(task.submit(source, folder, **settings))
    reports = [future.result() for future in futures]
    print(f"{stage}: {len(reports)} file(s) on the Dask cluster")
    return merge(stage, out, reports)


def on_cluster(address: str, stage: str, inputs: Path, out: Path, **settings) -> dict:
    """Run `stage` over `inputs` into `out` on the Dask cluster at `address` (HOST:PORT)."""
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=address if "://" in address else f"tcp://{address}")
    return fan_out.with_options(task_runner=runner, name=f"{stage}-on-dask")(stage, inputs, out, settings)
