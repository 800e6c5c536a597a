"""Run any stage (stages.contract.Stage) as an Apache Beam pipeline: one element per input file,
the same jobs, atomic writes, skips and per-file errors as `Stage.run`, spread over Beam workers
(all local cores by default; a Dask cluster, Dataflow, Flink or Spark through Beam options)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import apache_beam as beam

from maestro.preprocess import pipeline_options
from stages.contract import FileError, Stage, StageReport, check_output_dir, remove_stale_partials, run_job


class RunJob(beam.DoFn):
    def __init__(self, stage: Stage):
        self.stage = stage

    def setup(self):
        self.stage.prepare()  # a model stage loads its model here: once per worker, not per file

    def process(self, job):
        yield job, run_job(self.stage, job)


def run_stage(stage: Stage, inputs: Path | str | Sequence[Path], output_dir: Path | str, *,
              overwrite: bool = False, beam_args: Sequence[str] = ()) -> StageReport:
    output_dir = Path(output_dir)
    check_output_dir(output_dir)
    jobs = stage.plan(inputs, output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stage.record_config(output_dir, overwrite, jobs)
    report = StageReport(stage=stage.name, output_dir=str(output_dir))
    todo = []
    for job in jobs:
        (report.skipped if not overwrite and job.done() else todo).append(job)
    report.skipped = [str(job.source) for job in report.skipped]
    if todo:
        options, runner = pipeline_options(beam_args)
        with beam.Pipeline(runner=runner, options=options) as pipeline:
            results = (pipeline | beam.Create(todo, reshuffle=False) | beam.Reshuffle()
                       | beam.ParDo(RunJob(stage)) | beam.combiners.ToList())
            results | beam.Map(lambda pairs: _store(output_dir, pairs))
        remove_stale_partials(output_dir)  # what a worker killed mid-file left (its file was done again)
        targets = {str(job.source): str(job.main_target) for job in todo}
        for source, error in _load(output_dir):
            if error is None:
                report.written.append(targets[source])
            else:
                report.failed.append(FileError(source, error))
    return report


def _store(output_dir: Path, pairs) -> None:
    import json

    from stages.contract import write_text_atomic

    write_text_atomic(output_dir / ".beam-results.json", json.dumps([[str(j.source), e] for j, e in pairs]))


def _load(output_dir: Path) -> list:
    import json

    path = output_dir / ".beam-results.json"
    results = json.loads(path.read_text())
    path.unlink()
    return results
