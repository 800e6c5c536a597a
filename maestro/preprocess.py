"""Apache Beam: a MAESTRO-layout dataset -> TFRecord shards of `tf.train.Example`, per split.

  OUT/transcription/<split>.tfrecord-SSSSS-of-NNNNN   spans of <= ~20 s cut where no note sounds
  OUT/composition/<split>.tfrecord-SSSSS-of-NNNNN     one example per performance
  OUT/preprocess.json                                 counts, and every bad file with its reason

The graph: the metadata's records are assigned to shards by a stable hash of their file name,
grouped, and each shard's writer reads its recordings one at a time in name order. So memory is
bounded by one recording, the output is byte-for-byte deterministic, and a bad file is reported
while the rest are written. Files are read and written through Beam's filesystems, so the same
pipeline runs on Dataflow, Flink or Spark with gs:// (or hdfs://) paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from collections import Counter
from typing import Iterable, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from maestro.filesystems import partial_path, read_bytes, remove_partials, write_json
from maestro.metadata import SPLITS, Record, join_under, newest_metadata, read_metadata, select
from stages.contract import describe_error
from stages.io.audio import SAMPLE_RATE_HZ


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    splits: tuple[str, ...] = SPLITS
    years: tuple[int, ...] = ()
    composers: tuple[str, ...] = ()
    max_shards: int = 16  # per split; fewer when a split has fewer recordings
    min_seconds: float = 5.0
    max_seconds: float = 20.0
    sample_rate_hz: int = SAMPLE_RATE_HZ


def assign_shards(records: Sequence[Record], max_shards: int) -> tuple[list, dict[str, int]]:
    """((split, shard), record) pairs, round robin over each split's records in name order, so
    shards are balanced and the assignment depends only on the records; and shards per split."""
    by_split: dict[str, list[Record]] = {}
    for record in sorted(records, key=lambda r: r.audio_filename):
        by_split.setdefault(record.split, []).append(record)
    counts = {split: max(1, min(max_shards, len(rs))) for split, rs in by_split.items()}
    keyed = [((split, i % counts[split]), r) for split, rs in by_split.items() for i, r in enumerate(rs)]
    return keyed, counts


def shard_path(out: str, kind: str, split: str, index: int, count: int) -> str:
    return FileSystems.join(out, kind, f"{split}.tfrecord-{index:05d}-of-{count:05d}")


class WriteShard(beam.DoFn):
    """(split, shard) + its records -> one transcription and one composition shard file."""

    def __init__(self, root: str, out: str, config: PreprocessConfig, shards: dict[str, int]):
        self.root, self.out, self.config, self.shards = root, out, config, shards
        self.recordings = beam.metrics.Metrics.counter("preprocess", "recordings")
        self.failures = beam.metrics.Metrics.counter("preprocess", "failed_files")
        self.spans = beam.metrics.Metrics.counter("preprocess", "transcription_examples")

    def process(self, element: tuple[tuple[str, int], Iterable[Record]]):
        from maestro import tfrecord

        (split, index), records = element
        count = self.shards[split]
        stats = {"split": split, "shard": index, "recordings": 0, "transcription_examples": 0,
                 "composition_examples": 0, "audio_seconds": 0.0, "failed": []}
        paths = {kind: shard_path(self.out, kind, split, index, count) for kind in ("transcription", "composition")}
        # Writer-unique temporaries: a task the engine runs twice at once (a worker it thought lost
        # still running) must neither truncate the other's shard nor find its temporary renamed away.
        temporaries = {kind: partial_path(path) for kind, path in paths.items()}
        spans_file = FileSystems.create(temporaries["transcription"])
        performances_file = FileSystems.create(temporaries["composition"])
        try:
            for record in sorted(records, key=lambda r: r.audio_filename):
                for kind, data in self._examples(record, stats):
                    tfrecord.write_records(spans_file if kind == "transcription" else performances_file, [data])
        finally:
            spans_file.close()
            performances_file.close()
        FileSystems.rename(list(temporaries.values()), list(paths.values()))
        stats["audio_seconds"] = round(stats["audio_seconds"], 3)
        yield stats

    def _examples(self, record: Record, stats: dict):
        """(kind, serialized example) pairs of one performance; failures go into `stats`."""
        from maestro.examples import CompositionExample, encode_composition, encode_transcription
        from stages.io.midi import parse_midi

        try:
            midi_path = join_under(self.root, record.midi_filename)
            sequence = parse_midi(read_bytes(midi_path))
        except Exception as error:  # noqa: BLE001 - a bad file is reported, not fatal
            return self._fail(stats, record.midi_filename, error)
        yield "composition", encode_composition(CompositionExample(
            id=record.midi_filename, split=record.split, composer=record.canonical_composer,
            title=record.canonical_title, year=record.year, sequence=sequence))
        stats["composition_examples"] += 1
        try:
            spans = list(transcription_examples(record, sequence, self.root, self.config))
        except Exception as error:  # noqa: BLE001
            return self._fail(stats, record.audio_filename, error)
        for span in spans:
            yield "transcription", encode_transcription(span)
        stats["recordings"] += 1
        stats["transcription_examples"] += len(spans)
        stats["audio_seconds"] += spans[-1].end_seconds if spans else 0.0
        self.recordings.inc()
        self.spans.inc(len(spans))

    def _fail(self, stats: dict, path: str, error: Exception):
        stats["failed"].append([path, describe_error(error)])
        self.failures.inc()
        return iter(())


def transcription_examples(record: Record, sequence, root: str, config: PreprocessConfig):
    """The recording's spans with the sustain-extended notes of each, labels cut to the audio."""
    from maestro.examples import TranscriptionExample
    from maestro.segments import split_points
    from stages.io.audio import decode_audio
    from stages.io.midi import apply_sustain, crop

    audio = decode_audio(read_bytes(join_under(root, record.audio_filename)), config.sample_rate_hz)
    sustained = apply_sustain(sequence)
    points = split_points(sustained, audio, config.sample_rate_hz, config.min_seconds, config.max_seconds)
    rate = config.sample_rate_hz
    for start, end in zip(points[:-1], points[1:]):
        first, last = int(round(start * rate)), int(round(end * rate))
        yield TranscriptionExample(
            id=f"{record.audio_filename}@{start:.3f}", split=record.split, audio=audio[first:last],
            sample_rate_hz=rate, sequence=crop(sustained, start, end),
            start_seconds=start, end_seconds=end)


def build(pipeline: beam.Pipeline, root: str, out: str, records: Sequence[Record],
          config: PreprocessConfig) -> beam.PCollection:
    """Add the preprocessing graph; returns a PCollection of per-shard statistics."""
    keyed, shards = assign_shards(records, config.max_shards)
    return (
        pipeline
        | "Records" >> beam.Create(keyed, reshuffle=False)
        | "GroupByShard" >> beam.GroupByKey()
        | "SpreadShards" >> beam.Reshuffle()
        | "WriteShards" >> beam.ParDo(WriteShard(root, out, config, shards))
    )


def summarize(stats: list[dict]) -> dict:
    splits: dict[str, dict] = {}
    failed = []
    for shard in sorted(stats, key=lambda s: (s["split"], s["shard"])):
        total = splits.setdefault(shard["split"], Counter())
        for name in ("recordings", "transcription_examples", "composition_examples", "audio_seconds"):
            total[name] += shard[name]
        total["shards"] += 1
        failed += shard["failed"]
    return {
        "splits": {split: {k: round(v, 3) if isinstance(v, float) else v for k, v in sorted(c.items())}
                   for split, c in sorted(splits.items())},
        "failed_count": len(failed),
        "failed": sorted(failed),
    }


def pipeline_options(beam_args: Sequence[str]) -> tuple[PipelineOptions, object | None]:
    """Beam options from the command line; without --runner, the portable FnApiRunner in
    multi-processing mode on every core (the DirectRunner would first try to fetch Prism);
    `--runner=DaskRunner`, our fixed DaskRunner (maestro.dask_runner; Beam knows no such name)."""
    options = PipelineOptions(list(beam_args))
    if options.view_as(StandardOptions).runner == "DaskRunner":
        from maestro.dask_runner import DaskRunner

        return options, DaskRunner()
    if any(arg.startswith("--runner") for arg in beam_args):
        return options, None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    direct = options.view_as(DirectOptions)
    if not any(arg.startswith("--direct_num_workers") for arg in beam_args):
        direct.direct_num_workers = os.cpu_count() or 1
    if not any(arg.startswith("--direct_running_mode") for arg in beam_args):
        direct.direct_running_mode = "multi_processing"
    return options, FnApiRunner()


@contextlib.contextmanager
def quiet_workers(beam_args: Sequence[str] = ()):
    """Beam's local worker processes log their start-up at INFO (a dozen lines each) on the
    standard error they share with this process, before any option can quiet them: unless the
    command runs with -v (logging at DEBUG), that stream is silenced while the pipeline runs.
    What fails is reported from the pipeline's results afterwards, as ever."""
    if logging.getLogger().isEnabledFor(logging.INFO) or any(a.startswith("--runner") for a in beam_args):
        yield
        return
    from stages.quiet import native_stderr_silenced

    with native_stderr_silenced():
        yield


def run(root: str, out: str, config: PreprocessConfig = PreprocessConfig(),
        beam_args: Sequence[str] = ()) -> dict:
    """Run the pipeline to completion and write OUT/preprocess.json; returns that summary."""
    unreadable: list = []  # metadata rows with a value that is not one: reported, the others go on
    records = select(load_records(root, unreadable), splits=config.splits, years=config.years or None,
                     composers=config.composers or None)
    if not records:
        raise ValueError(f"no records in {root} match splits={config.splits} years={config.years} "
                         f"composers={config.composers}")
    options, runner = pipeline_options(beam_args)
    remove_partials(out)  # a killed run's temporaries
    summary_path = FileSystems.join(out, "preprocess.json")
    with quiet_workers(beam_args), beam.Pipeline(runner=runner, options=options) as pipeline:
        (build(pipeline, root, out, records, config)
         | "Collect" >> beam.combiners.ToList()
         | "Summarize" >> beam.Map(lambda stats: write_json(summary_path, summarize(stats))))
    with FileSystems.open(summary_path) as handle:
        summary = json.loads(handle.read())
    if unreadable:
        summary["failed"] = sorted(summary["failed"] + unreadable)
        summary["failed_count"] = len(summary["failed"])
        write_json(summary_path, summary)
    return summary


def load_records(root: str, problems: list | None = None) -> list[Record]:
    """The metadata of a dataset root, local or behind any Beam filesystem, each recording once;
    rows that cannot be read go to `problems` (see read_metadata)."""
    matches = FileSystems.match([FileSystems.join(root, "maestro-v*")])[0].metadata_list
    names = [m.path for m in matches if m.path.endswith((".csv", ".json"))]
    if not names:
        raise FileNotFoundError(f"no maestro-v*.csv or maestro-v*.json in {root}")
    newest = newest_metadata(names)
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, os.path.basename(newest))
        with open(local, "wb") as handle:
            handle.write(read_bytes(newest))
        return read_metadata(local, problems, unique=True)


def preprocess_from(settings, beam_args: Sequence[str] = ()) -> int:
    """`w2m2w maestro preprocess`: prints the summary as JSON."""
    config = PreprocessConfig(splits=settings.splits, years=settings.years, composers=settings.composers,
                              max_shards=settings.max_shards, min_seconds=settings.min_seconds,
                              max_seconds=settings.max_seconds)
    summary = run(settings.root, settings.out, config, beam_args)
    print(json.dumps(summary, indent=2))
    return 0 if summary["failed_count"] == 0 else 1
