"""Apache Beam: re-transcribe every recording of a MAESTRO-layout dataset with a transcriber
checkpoint.

A recording whose windows make one model batch (by its metadata's duration: up to 80 s at the
default 20 s windows and batch of 4) is transcribed whole where it is read:
  records -> TranscribeRecording: audio -> log-mel -> fixed-size windows (chunk + overlap) ->
             the model, as RunInference's handler runs it (one padded batch) -> each window's
             centre (a Centre) -> stitch, decode, write (as WriteTranscription below)
Longer ones go through Beam's RunInference, batched with other recordings' windows:
  records -> ChunkRecording: the same windows, keyed by (recording, Window: where it lies)
          -> RunInference(TranscriberHandler): the model is loaded once per worker
          -> keep_centre: each window's centre, the heads' probabilities there (a Centre)
          -> GroupByKey per recording -> stitch, decode with the stage's own decoding
             (transcribe.transcriber.decode_probabilities, as `Transcriber.notes`, with the
             checkpoint's rescorer when it has one), write OUT/<recording path>.midi and its
             mir_eval metrics against the dataset's MIDI (OUT/<recording path>.metrics.json)
  OUT/retranscription.json: every recording's metrics, the mean, and every failure with reason.

The centres carry the four heads as float32, exactly what in-process decoding reads, so the notes
are those of `w2m2w transcribe`: 4 heads x 88 keys x 4 bytes per frame at 31.25 frames per second
(the default 16 kHz and hop of 512), 44 kB per second of audio (1.32 MB per 30 s recording, 158 MB
per hour, what the in-process transcriber holds too). Through a GroupByKey that costs more than
its bytes: measured on Dask (2 workers, 8 recordings of 30 s), pickling a recording's Centres takes
0.6 ms and zlib would shrink them only 1.22x (byte-shuffled, 22 ms of CPU), but the grouping's task
shuffle is N^2 tasks for N recordings, a recording's Centres move to whichever worker holds its
hash bucket, and recordings whose paths share a bucket are decoded one after the other in one
task. Hence the whole path for recordings that fit one batch: 8 tasks per recording on Dask instead
of 57 (64 for 8 files instead of 456, with the runner's tree-reduced ToList), and no Centres between
workers. A recording longer than its metadata says still comes out right on the whole path, a
batch at a time.

Idempotent: recordings whose MIDI and metrics exist are skipped; a bad recording is recorded as
failed and the rest go on. Beam options pass through, as for `maestro preprocess`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from maestro.filesystems import partial_path, read_bytes, write_json
from maestro.filesystems import remove_partials as remove_local_partials
from maestro.metadata import Record, join_under, select
from maestro.preprocess import load_records, pipeline_options, quiet_workers
from stages.checkpoints import load_checkpoint, require_config
from stages.contract import InputError, describe_error
from stages.io.audio import MIN_AUDIO_SECONDS, decode_audio
from stages.io.midi import write_midi
from transcribe.config import DecodingSettings, TranscriberConfig
from transcribe.features import SILENCE, log_mel
from transcribe.metrics import mean_metrics, transcription_metrics

FAILED = "failed"
MAX_SECONDS = 7200.0  # as `w2m2w transcribe --max-seconds`: longer recordings are refused from their headers


def output_path(out: str, record: Record, suffix: str) -> str:
    """Where a recording's outputs go: its path under OUT, never outside it (InputError)."""
    relative = posixpath.normpath(record.audio_filename)
    if record.audio_filename.startswith("/") or relative == ".." or relative.startswith("../"):
        raise InputError(f"path escapes the output folder: {record.audio_filename}")
    target = FileSystems.join(out, str(PurePosixPath(relative).with_suffix(suffix)))
    if "://" not in out and not Path(target).resolve().is_relative_to(Path(out).resolve()):
        raise InputError(f"path escapes the output folder through a link: {record.audio_filename}")
    return target


def refuse_unsafe(root: str, out: str, records: Sequence[Record]) -> tuple[list[Record], list]:
    """(records whose paths stay inside ROOT and OUT, [audio path, reason] of the others)."""
    safe, refused = [], []
    for record in records:
        try:
            join_under(root, record.audio_filename)
            join_under(root, record.midi_filename)
            for suffix in (".midi", ".metrics.json"):
                output_path(out, record, suffix)
        except InputError as error:
            refused.append([record.audio_filename, str(error)])
        else:
            safe.append(record)
    return safe, refused


def load_keras(path: str):
    """A transcriber or rescorer `.keras` file behind any Beam filesystem."""
    import keras  # Keras and TensorFlow load only where a model does (and in each Beam worker)

    # Keras finds a checkpoint's classes by their registered names, which these imports register
    # (the module a checkpoint names is only Keras' fallback, and older checkpoints name modules
    # that have since moved into transcribe's sub-packages).
    import transcribe.onsets_frames.model  # noqa: F401
    import transcribe.rescorer.rescore  # noqa: F401

    with tempfile.NamedTemporaryFile(suffix=".keras") as local:  # the checkpoint may be remote
        local.write(read_bytes(path))
        local.flush()
        return keras.saving.load_model(local.name, compile=False)


def rescorer_of(checkpoint: str) -> str | None:
    """The onset rescorer beside a checkpoint, on any filesystem, or None when there is none."""
    from transcribe.rescorer.rescore import rescorer_path

    path = rescorer_path(checkpoint)
    return path if FileSystems.exists(path) else None


@dataclasses.dataclass(frozen=True)
class Centre:
    """A window's centre: the `index`th of the recording's `count`, and the heads' probabilities
    there, {onsets, offsets, frames, velocities} -> (frames, 88) float32."""

    index: int
    count: int
    total_frames: int
    probabilities: dict[str, np.ndarray]


class TranscriberHandler(ModelHandler):
    """RunInference model handler: numpy windows (frames, mel_bins) -> probability dicts."""

    def __init__(self, checkpoint: str, batch_size: int = 4):
        self.checkpoint, self.batch_size = checkpoint, batch_size

    def load_model(self):
        return load_keras(self.checkpoint)

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args=None) -> Iterable[PredictionResult]:
        from transcribe.onsets_frames.model import probabilities

        x = np.stack(batch)
        if len(x) < self.batch_size:  # a fixed batch shape: one traced graph
            x = np.concatenate([x, np.repeat(x[-1:], self.batch_size - len(x), axis=0)])
        probs = probabilities(model.predict_on_batch(x))
        for i, window in enumerate(batch):
            yield PredictionResult(window, {name: values[i] for name, values in probs.items()})

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self.batch_size}

    def share_model_across_processes(self) -> bool:
        return False


def recording_windows(root: str, record: Record, config: TranscriberConfig) -> list:
    """A recording -> [(Window, its log-mel frames (window frames, mel_bins) float32)], the
    recording padded with silence to one window when shorter; raises what a bad recording raises."""
    from transcribe.transcriber import windows  # TensorFlow loads only in the workers

    audio = decode_audio(read_bytes(join_under(root, record.audio_filename)), config.sample_rate_hz,
                         max_seconds=MAX_SECONDS)
    if len(audio) < MIN_AUDIO_SECONDS * config.sample_rate_hz:
        raise InputError(f"audio too short ({len(audio) / config.sample_rate_hz:.2f} s): at least "
                         f"{MIN_AUDIO_SECONDS} s is needed")
    mel = log_mel(audio, config)
    total, size = len(mel), config.chunk_frames + 2 * config.overlap_frames
    if total < size:
        mel = np.concatenate([mel, np.full((size - total, mel.shape[1]), SILENCE, np.float32)])
    return [(window, mel[window.first: window.first + size]) for window in windows(total, config)]


def fits_one_batch(record: Record, config: TranscriberConfig, batch_size: int) -> bool:
    """Whether a recording's windows, by its metadata's duration, make at most one model batch."""
    return record.duration * config.frames_per_second <= batch_size * config.chunk_frames


class ChunkRecording(beam.DoFn):
    """Record -> ((audio path, Window), window frames) for RunInference; failures go to the
    `failed` output."""

    def __init__(self, root: str, config_json: str):
        self.root, self.config_json = root, config_json

    def process(self, record: Record):
        config = TranscriberConfig.from_dict(json.loads(self.config_json))
        try:
            pieces = recording_windows(self.root, record, config)
        except Exception as error:  # noqa: BLE001 - a bad recording is reported, the rest go on
            yield beam.pvalue.TaggedOutput(FAILED, (record.audio_filename, describe_error(error)))
            return
        for window, frames in pieces:
            yield (record.audio_filename, window), frames


def keep_centre(element) -> tuple[str, Centre]:
    """((path, Window), PredictionResult) -> (path, Centre): the heads where the window counts,
    float32 (copied, so the batch's arrays are not kept alive)."""
    (path, window), result = element
    probs = {name: np.array(values[window.offset: window.offset + window.length], np.float32)
             for name, values in result.inference.items()}
    return path, Centre(window.index, window.count, window.total_frames, probs)


def stitch(centres: Iterable[Centre]) -> dict[str, np.ndarray]:
    """A recording's centres, in any order -> the heads over the whole recording, (frames, 88)
    each, as `Transcriber.predict` gives them; RuntimeError when some are missing."""
    centres = sorted(centres, key=lambda c: c.index)
    if [c.index for c in centres] != list(range(centres[0].count)):
        raise RuntimeError(f"{len(centres)} of {centres[0].count} chunks arrived")
    probs = {name: np.concatenate([c.probabilities[name] for c in centres]) for name in centres[0].probabilities}
    frames = {len(values) for values in probs.values()}
    if frames != {centres[0].total_frames}:
        raise RuntimeError(f"the chunks cover {sorted(frames)} frames of {centres[0].total_frames}")
    return probs


class WriteTranscription(beam.DoFn):
    """(path, Centres) -> MIDI and metrics files for one recording; yields its summary row."""

    def __init__(self, root: str, out: str, records: dict, config_json: str, rescorer: str | None = None,
                 decoding: DecodingSettings = DecodingSettings()):
        self.root, self.out, self.records = root, out, records
        self.config_json, self.rescorer, self.decoding = config_json, rescorer, decoding

    def setup(self):
        self.config = TranscriberConfig.from_dict(json.loads(self.config_json))
        self.fps = self.config.frames_per_second
        self.rescorer_model = load_keras(self.rescorer) if self.rescorer else None
        if self.rescorer_model is not None and not self.decoding.note_ends:
            self.rescorer_model.note_ends = False  # as Transcriber.load(note_ends=False)

    def process(self, element):
        path, centres = element
        yield from self.write(path, centres)

    def write(self, path: str, centres: Iterable[Centre]):
        from transcribe.evaluate import reference_notes
        from transcribe.transcriber import decode_probabilities, sequence_at_tempo

        record = self.records[path]
        try:
            probs = stitch(centres)
            notes = decode_probabilities(probs, self.config, self.rescorer_model, self.decoding)  # as Transcriber.notes
            seconds = len(probs["frames"]) / self.fps
            del probs
            local = _temporary_local(sequence_at_tempo(notes, self.decoding.midi_tempo))
            metrics = transcription_metrics(reference_notes(_local_copy(join_under(self.root, record.midi_filename)),
                                                            record.duration), notes, self.fps)
        except Exception as error:  # noqa: BLE001
            yield {"audio_filename": path, FAILED: describe_error(error)}
            return
        _copy_atomic(local, output_path(self.out, record, ".midi"))
        row = {"audio_filename": path, "composer": record.canonical_composer, "year": record.year,
               "seconds": round(seconds, 3), "notes": int(len(notes)), **{k: round(v, 4) for k, v in metrics.items()}}
        write_json(output_path(self.out, record, ".metrics.json"), row)
        yield row


class TranscribeRecording(WriteTranscription):
    """Record -> its MIDI and metrics in one step, for a recording whose windows make one batch:
    the windows through the model as RunInference's handler runs them (the same padded batch),
    their centres stitched and decoded as WriteTranscription does. Nothing leaves the worker: no
    Centres through a GroupByKey (1.3 MB per 30 s recording, 44 kB per second of audio) and, on
    Dask, no shuffle tasks. A longer recording than its metadata says goes a batch at a time.
    Failures go to the `failed` output."""

    def __init__(self, root: str, out: str, records: dict, config_json: str, checkpoint: str, batch_size: int,
                 rescorer: str | None = None, decoding: DecodingSettings = DecodingSettings()):
        super().__init__(root, out, records, config_json, rescorer, decoding)
        self.handler = TranscriberHandler(checkpoint, batch_size)

    def setup(self):
        super().setup()
        self.model = self.handler.load_model()

    def process(self, record: Record):
        path = record.audio_filename
        try:
            pieces = recording_windows(self.root, record, self.config)
        except Exception as error:  # noqa: BLE001 - a bad recording is reported, the rest go on
            yield beam.pvalue.TaggedOutput(FAILED, (path, describe_error(error)))
            return
        centres = []
        for first in range(0, len(pieces), self.handler.batch_size):
            batch = pieces[first: first + self.handler.batch_size]
            results = self.handler.run_inference([frames for _, frames in batch], self.model)
            centres += [keep_centre(((path, window), result))[1] for (window, _), result in zip(batch, results)]
        del pieces
        yield from self.write(path, centres)


def _temporary_local(sequence) -> str:
    handle = tempfile.NamedTemporaryFile(suffix=".midi", delete=False)
    handle.close()
    write_midi(sequence, handle.name)
    return handle.name


def _local_copy(path: str):
    """A local path for a file behind any Beam filesystem (references may live in gs://)."""
    if "://" not in path:
        return Path(path)
    handle = tempfile.NamedTemporaryFile(suffix=PurePosixPath(path).suffix, delete=False)
    handle.write(read_bytes(path))
    handle.close()
    return Path(handle.name)


def _copy_atomic(local: str, target: str) -> None:
    partial = partial_path(target)
    with open(local, "rb") as source, FileSystems.create(partial) as handle:
        handle.write(source.read())
    FileSystems.rename([partial], [target])
    os.unlink(local)


@dataclasses.dataclass(frozen=True)
class RetranscribeConfig:
    splits: tuple[str, ...] = ()
    years: tuple[int, ...] = ()
    composers: tuple[str, ...] = ()
    batch_size: int = 4
    decoding: DecodingSettings = DecodingSettings()  # as `w2m2w transcribe`'s


def pending(records: Sequence[Record], out: str) -> list[Record]:
    """Records without both their MIDI and metrics in OUT (a rerun does only these)."""
    return [r for r in records if not (FileSystems.exists(output_path(out, r, ".midi"))
                                       and FileSystems.exists(output_path(out, r, ".metrics.json")))]


def build(pipeline: beam.Pipeline, root: str, out: str, records: Sequence[Record], checkpoint: str,
          transcriber_config, batch_size: int = 4, decoding: DecodingSettings = DecodingSettings()):
    """Add the graph; returns (rows, failures) PCollections. Notes are decoded at `decoding`, as
    in `w2m2w transcribe`: the checkpoint's onset rescorer, when it has one and `decoding.rescore`,
    decides where notes start (and, unless `decoding.note_ends` is False, where they end)."""
    rescorer = rescorer_of(checkpoint) if decoding.rescore else None
    by_path, config_json = {r.audio_filename: r for r in records}, transcriber_config.to_json()
    whole = [r for r in records if fits_one_batch(r, transcriber_config, batch_size)]
    chunked = [r for r in records if not fits_one_batch(r, transcriber_config, batch_size)]
    rows, failures = [], []
    if whole:
        done = (pipeline
                | "Whole" >> beam.Create(whole, reshuffle=False)
                | "SpreadWhole" >> beam.Reshuffle()
                | "TranscribeWhole" >> beam.ParDo(TranscribeRecording(root, out, by_path, config_json, checkpoint,
                                                                      batch_size, rescorer, decoding))
                                       .with_outputs(FAILED, main="rows"))
        rows.append(done.rows)
        failures.append(done[FAILED])
    if chunked:
        chunks = (pipeline
                  | "Records" >> beam.Create(chunked, reshuffle=False)
                  | "Spread" >> beam.Reshuffle()
                  | "Chunk" >> beam.ParDo(ChunkRecording(root, config_json)).with_outputs(FAILED, main="windows"))
        rows.append(chunks.windows
                    | "Transcribe" >> RunInference(KeyedModelHandler(TranscriberHandler(checkpoint, batch_size)))
                    | "KeepCentres" >> beam.Map(keep_centre)
                    | "PerRecording" >> beam.GroupByKey()
                    | "Write" >> beam.ParDo(WriteTranscription(root, out, by_path, config_json, rescorer, decoding)))
        failures.append(chunks[FAILED])
    return (rows | "Rows" >> beam.Flatten()), (failures | "Failures" >> beam.Flatten())


def run(root: str, out: str, checkpoint: str, config: RetranscribeConfig = RetranscribeConfig(),
        beam_args: Sequence[str] = ()) -> dict:
    """Re-transcribe what is not done yet, then summarise everything in OUT."""
    import keras

    import transcribe.onsets_frames.model  # noqa: F401  (registers the custom layers)

    unreadable: list = []  # metadata rows with a value that is not one: reported, the others go on
    records = select(load_records(root, unreadable), splits=config.splits or None, years=config.years or None,
                     composers=config.composers or None)
    if not records:
        raise ValueError(f"no records in {root} match the filters"
                         + (f" ({len(unreadable)} rows unreadable: {unreadable[0][1]})" if unreadable else ""))
    records, failures = refuse_unsafe(root, out, records)
    failures += unreadable
    refused = len(failures)
    config.decoding.check_for(checkpoint)
    if "://" in checkpoint:
        transcriber_config = load_keras(checkpoint).config
    else:
        model = load_checkpoint(lambda: keras.saving.load_model(checkpoint, compile=False), checkpoint, "transcriber")
        require_config(model, TranscriberConfig, checkpoint, "transcriber")
        transcriber_config = model.config
    remove_partials(out)
    todo = pending(records, out)
    if todo:
        options, runner = pipeline_options(beam_args)
        failed_path = FileSystems.join(out, ".failed.partial.json")
        with quiet_workers(beam_args), beam.Pipeline(runner=runner, options=options) as pipeline:
            rows, failed = build(pipeline, root, out, todo, checkpoint, transcriber_config, config.batch_size,
                                   config.decoding)
            (((rows | "FailedRows" >> beam.Filter(lambda row: FAILED in row)
               | "AsPairs" >> beam.Map(lambda row: (row["audio_filename"], row[FAILED]))), failed)
             | "AllFailures" >> beam.Flatten()
             | "Collect" >> beam.combiners.ToList()
             | "Save" >> beam.Map(lambda items: write_json(failed_path, {"failed": sorted(items)})))
        with FileSystems.open(failed_path) as handle:
            failures += json.loads(handle.read())["failed"]
        FileSystems.delete([failed_path])
    return summarize(records, out, failures, refused=refused)


def remove_partials(out: str) -> None:
    """Delete what a killed run left half-written in a local OUT (`*.partial`, `.failed.partial.json`)."""
    remove_local_partials(out)
    if "://" not in out and Path(out).is_dir():
        (Path(out) / ".failed.partial.json").unlink(missing_ok=True)


def summarize(records: Sequence[Record], out: str, failures: list, refused: int = 0) -> dict:
    """OUT/retranscription.json over `records` (and `refused` more whose paths were refused,
    among `failures`)."""
    rows = []
    for record in records:
        path = output_path(out, record, ".metrics.json")
        if FileSystems.exists(path):
            with FileSystems.open(path) as handle:
                rows.append(json.loads(handle.read()))
    keys = [k for k in (rows[0] if rows else {}) if "/" in k]
    summary = {"recordings": len(records) + refused, "transcribed": len(rows),
               "mean": {k: round(v, 4) for k, v in mean_metrics([{k: r[k] for k in keys} for r in rows]).items()},
               "failed_count": len(failures), "failed": failures, "per_recording": rows}
    write_json(FileSystems.join(out, "retranscription.json"), summary)
    return summary


def retranscribe_from(settings, decoding: DecodingSettings, beam_args: Sequence[str] = ()) -> int:
    """`w2m2w maestro retranscribe`: prints what was transcribed, what failed and the mean metrics."""
    from stages.checkpoints import checkpoint_for
    from stages.contract import printable
    from transcribe.metrics import format_metrics

    config = RetranscribeConfig(settings.splits, settings.years, settings.composers, settings.batch_size, decoding)
    summary = run(settings.root, settings.out, str(checkpoint_for("transcribe", settings.checkpoint)), config,
                  beam_args)
    print(f"{summary['transcribed']} of {summary['recordings']} recordings transcribed, "
          f"{summary['failed_count']} failed")
    for path, reason in summary["failed"]:
        print(f"  FAILED {printable(path)}: {printable(reason)}")
    if summary["mean"]:
        print(format_metrics(summary["mean"]))
    return 0 if summary["failed_count"] == 0 else 1
