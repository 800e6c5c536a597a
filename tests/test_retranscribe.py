"""Batch re-transcription on Beam: a TestPipeline over a tiny rendered MAESTRO layout with the
tiny model, a corrupt recording reported while the others are written, an idempotent rerun, and
notes equal to in-process transcription (the windows' centres stitched back into exactly the
heads `Transcriber.notes` decodes)."""

from __future__ import annotations

import dataclasses
import json
import pickle
import random
import shutil
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from batch import retranscribe
from maestro.metadata import Dataset, Record
from stages.io.midi import notes_from_sequence, read_note_sequence, sequence_from_notes, write_midi
from transcribe.config import DecodingSettings, TranscriberConfig
from transcribe.onsets_frames.model import build_model
from transcribe.transcriber import Transcriber, windows

IN_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
DECODINGS = ["thresholds", "rescorer", "note-ends", "note-ends-off"]
# Every decoding setting away from its default, so a setting the Beam path forgets shows.
DECODING_CONFIG = dataclasses.replace(TranscriberConfig.tiny(), onset_threshold=0.45, frame_threshold=0.4,
                                      offset_threshold=0.5, offset_frame_gate=0.8, offset_correction_s=-0.02)


@pytest.fixture(scope="module")
def built_checkpoint(tmp_path_factory):
    """The tiny transcriber at DECODING_CONFIG, built once for the module."""
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("built") / "tiny.keras"
    build_model(DECODING_CONFIG).save(path)
    return path


@pytest.fixture
def checkpoint(built_checkpoint, tmp_path):
    """A copy of it of this test's own, so that a rescorer saved beside it stays in this test."""
    return shutil.copy(built_checkpoint, tmp_path / "tiny.keras")


def untrained_rescorer(decoding: str):
    """For a decoding of DECODINGS other than "thresholds": an (untrained) onset rescorer, with a
    note-end network for "note-ends..."; its logits spread around 0, so that it accepts some
    candidates and rejects others, and ends some notes sooner than others."""
    from transcribe.rescorer.note_ends import NUM_FEATURES as NUM_END_FEATURES
    from transcribe.rescorer.rescore import NUM_FEATURES, build_rescorer

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 1, (64, NUM_FEATURES)).astype(np.float32)
    end_features = (rng.uniform(0, 1, (64, NUM_END_FEATURES)).astype(np.float32)
                    if decoding.startswith("note-ends") else None)
    rescorer = build_rescorer(features, candidate_threshold=0.3, end_features=end_features)
    rescorer.logit.kernel.assign(np.random.default_rng(2).normal(0, 3, rescorer.logit.kernel.shape))
    if end_features is not None:
        rescorer.end_logit.kernel.assign(np.random.default_rng(3).normal(0, 3, rescorer.end_logit.kernel.shape))
    return rescorer


@pytest.fixture(params=DECODINGS)
def decoded_checkpoint(request, checkpoint):
    """(checkpoint, note_ends): the tiny checkpoint decoded at its thresholds, or with an
    (untrained) onset rescorer beside it, or with one that has a note-end network too, used or
    switched off."""
    if request.param != "thresholds":
        from transcribe.rescorer.rescore import rescorer_path

        untrained_rescorer(request.param).save(rescorer_path(checkpoint))
    return checkpoint, request.param != "note-ends-off"


@pytest.mark.parametrize("decoding", DECODINGS)
@pytest.mark.parametrize("total_frames", [50, 300])  # shorter than a window (padded), several windows
def test_centres_stitch_into_the_heads_and_decode_as_the_transcriber(decoding, total_frames):
    """The Beam path's wire (keep_centre -> Centre -> stitch, in any order) gives back exactly
    the heads, float32, and WriteTranscription's decoding is `Transcriber.notes`."""
    from apache_beam.ml.inference.base import PredictionResult

    from transcribe.transcriber import decode_probabilities

    config = DECODING_CONFIG
    rng = np.random.default_rng(4)
    probs = {name: rng.uniform(0, 1, (total_frames, 88)).astype(np.float32) ** 3
             for name in ("onsets", "offsets", "frames", "velocities")}
    size = config.chunk_frames + 2 * config.overlap_frames
    padded = {name: np.concatenate([v, rng.uniform(0, 1, (max(size - total_frames, 0), 88)).astype(np.float32)])
              for name, v in probs.items()}  # what the model says of the silence padding is never kept
    centres = []
    for window in windows(total_frames, config):
        first = window.start - window.offset
        result = PredictionResult(None, {name: v[first: first + size] for name, v in padded.items()})
        path, centre = retranscribe.keep_centre((("a.wav", window), result))
        assert path == "a.wav" and all(v.dtype == np.float32 for v in centre.probabilities.values())
        centres.append(pickle.loads(pickle.dumps(centre)))  # as through a shuffle
    assert len(centres) == (1 if total_frames < size else -(-total_frames // config.chunk_frames))
    random.Random(5).shuffle(centres)
    stitched = retranscribe.stitch(centres)
    assert stitched.keys() == probs.keys() and all(np.array_equal(stitched[k], probs[k]) for k in probs)
    with pytest.raises(RuntimeError, match="chunks arrived"):
        retranscribe.stitch(centres[1:] or [dataclasses.replace(centres[0], count=2)])

    rescorer = None if decoding == "thresholds" else untrained_rescorer(decoding)
    if rescorer is not None and decoding == "note-ends-off":
        rescorer.note_ends = False  # as Transcriber.load(note_ends=False) and WriteTranscription.setup
    local = Transcriber(SimpleNamespace(config=config), rescorer=rescorer).notes(probs)
    beam = decode_probabilities(stitched, config, rescorer)
    assert len(local) > 0 and np.array_equal(beam, local)


@pytest.mark.slow  # a Beam pipeline over a rendered dataset
def test_test_pipeline_writes_a_midi_and_metrics_per_recording(rendered, decoded_checkpoint, tmp_path):
    checkpoint, note_ends = decoded_checkpoint
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing import test_pipeline
    from apache_beam.testing.util import assert_that

    records = Dataset.open(rendered).records
    config = keras.saving.load_model(checkpoint, compile=False).config
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as pipeline:
        rows, failed = retranscribe.build(pipeline, str(rendered), str(tmp_path / "out"), records, str(checkpoint),
                                          config, decoding=DecodingSettings(note_ends=note_ends))

        def check(found):
            assert sorted(r["audio_filename"] for r in found) == sorted(r.audio_filename for r in records)
            assert all("note/f1" in r and 0 <= r["note/f1"] <= 1 for r in found)

        assert_that(rows, check)
        assert_that(failed, lambda items: None if list(items) == [] else pytest.fail(f"failures: {items}"),
                    label="NoFailures")
    transcriber = Transcriber.load(checkpoint, note_ends=note_ends)
    for record in records:
        assert retranscribe.output_path(str(tmp_path / "out"), record, ".midi").endswith(".midi")
        written = (tmp_path / "out" / record.audio_filename).with_suffix(".midi")
        assert written.read_bytes().startswith(b"MThd")
        beam_notes = notes_from_sequence(read_note_sequence(written))
        local = transcriber.transcribe_file(rendered / record.audio_filename)
        local_midi = tmp_path / "local.midi"  # through the same MIDI writing, so times fall on the same ticks
        write_midi(sequence_from_notes(local), local_midi)
        assert len(local) > 0 and np.array_equal(beam_notes, notes_from_sequence(read_note_sequence(local_midi)))


def test_recordings_of_one_batch_are_transcribed_whole_and_longer_ones_through_the_grouping():
    config = TranscriberConfig.tiny()  # 96 frames of centre per window, 31.25 frames per second
    record = Record("C", "T", "test", 2018, "a.midi", "a.wav", duration=96 * 4 / 31.25)
    assert retranscribe.fits_one_batch(record, config, batch_size=4)
    assert not retranscribe.fits_one_batch(dataclasses.replace(record, duration=record.duration + 0.1), config, 4)


@pytest.mark.slow  # a Beam pipeline over a rendered dataset
def test_both_paths_in_one_pipeline_give_the_in_process_notes(rendered, checkpoint, tmp_path):
    """Two recordings go whole (one of them longer than its metadata says: a batch at a time), two
    through RunInference and the GroupByKey; all four as `w2m2w transcribe`."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing import test_pipeline
    from apache_beam.testing.util import assert_that

    records = [dataclasses.replace(r, duration=1.0 if i < 2 else 100.0)
               for i, r in enumerate(Dataset.open(rendered).records)]
    config = keras.saving.load_model(checkpoint, compile=False).config
    assert len(retranscribe.recording_windows(str(rendered), records[0], config)) > 1  # so: two batches of one
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as pipeline:
        rows, failed = retranscribe.build(pipeline, str(rendered), str(tmp_path / "out"), records, str(checkpoint),
                                          config, batch_size=1)
        assert_that(rows, lambda found: None if len(found) == 4 and all("note/f1" in r for r in found)
                    else pytest.fail(f"rows: {found}"))
        assert_that(failed, lambda items: None if list(items) == [] else pytest.fail(f"failures: {items}"),
                    label="NoFailures")
    transcriber = Transcriber.load(checkpoint)
    for record in records:
        written = (tmp_path / "out" / record.audio_filename).with_suffix(".midi")
        beam_notes = notes_from_sequence(read_note_sequence(written))
        local_midi = tmp_path / "local.midi"
        write_midi(sequence_from_notes(transcriber.transcribe_file(rendered / record.audio_filename)), local_midi)
        assert len(beam_notes) > 0 and np.array_equal(beam_notes, notes_from_sequence(read_note_sequence(local_midi)))


@pytest.mark.slow  # a Beam pipeline over a rendered dataset
def test_corrupt_recording_is_reported_and_a_rerun_skips_finished_work(rendered, checkpoint, tmp_path):
    dataset_root = tmp_path / "dataset"
    shutil.copytree(rendered, dataset_root)
    records = Dataset.open(dataset_root).records
    (dataset_root / records[1].audio_filename).write_bytes(b"RIFF....WAVEbroken")
    out = tmp_path / "out"
    summary = retranscribe.run(str(dataset_root), str(out), str(checkpoint), beam_args=IN_PROCESS)
    assert summary["transcribed"] == 3 and summary["failed_count"] == 1
    assert summary["failed"][0][0] == records[1].audio_filename and "cannot decode audio" in summary["failed"][0][1]
    assert json.loads((out / "retranscription.json").read_text())["transcribed"] == 3
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.midi")}
    assert len(retranscribe.pending(records, str(out))) == 1  # only the failed one is left to do
    shutil.copy(rendered / records[1].audio_filename, dataset_root / records[1].audio_filename)  # repaired
    again = retranscribe.run(str(dataset_root), str(out), str(checkpoint), beam_args=IN_PROCESS)
    assert again["transcribed"] == 4 and again["failed_count"] == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # finished work untouched
    assert not list(out.rglob("*.partial"))
