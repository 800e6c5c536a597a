"""Batch re-transcription on Beam: a TestPipeline over a tiny rendered MAESTRO layout with the
tiny model, a corrupt recording reported while the others are written, an idempotent rerun, and
notes equal to in-process transcription."""

from __future__ import annotations

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from batch import retranscribe
from maestro.metadata import Dataset
from stages.midi import notes_from_sequence, read_note_sequence
from transcribe.config import TranscriberConfig
from transcribe.model import build_model
from transcribe.transcriber import Transcriber

pytestmark = pytest.mark.slow  # Beam pipelines over a rendered dataset

IN_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture
def checkpoint(tmp_path):
    keras.utils.set_random_seed(0)
    path = tmp_path / "tiny.keras"
    # Every decoding setting away from its default, so a setting the Beam path forgets shows.
    config = dataclasses.replace(TranscriberConfig.tiny(), onset_threshold=0.45, frame_threshold=0.4,
                                 offset_threshold=0.5, offset_frame_gate=0.8,
                                 offset_correction_s=-0.02)
    build_model(config).save(path)
    return path


@pytest.fixture(params=["thresholds", "rescorer", "note-ends", "note-ends-off"])
def decoded_checkpoint(request, checkpoint):
    """(checkpoint, note_ends): the tiny checkpoint decoded at its thresholds, or with an
    (untrained) onset rescorer beside it, or with one that has a note-end network too, used or
    switched off."""
    if request.param != "thresholds":
        from transcribe.note_ends import NUM_FEATURES as NUM_END_FEATURES
        from transcribe.rescore import NUM_FEATURES, build_rescorer, rescorer_path

        keras.utils.set_random_seed(1)
        rng = np.random.default_rng(0)
        features = rng.uniform(0, 1, (64, NUM_FEATURES)).astype(np.float32)
        end_features = (rng.uniform(0, 1, (64, NUM_END_FEATURES)).astype(np.float32)
                        if request.param.startswith("note-ends") else None)
        rescorer = build_rescorer(features, candidate_threshold=0.3, end_features=end_features)
        # Spread its logits around 0, so that it accepts some candidates and rejects others.
        rescorer.logit.kernel.assign(np.random.default_rng(2).normal(0, 3, rescorer.logit.kernel.shape))
        if end_features is not None:
            rescorer.end_logit.kernel.assign(np.random.default_rng(3).normal(0, 3, rescorer.end_logit.kernel.shape))
        rescorer.save(rescorer_path(checkpoint))
    return checkpoint, request.param != "note-ends-off"


def test_test_pipeline_writes_a_midi_and_metrics_per_recording(rendered, decoded_checkpoint, tmp_path):
    checkpoint, note_ends = decoded_checkpoint
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing import test_pipeline
    from apache_beam.testing.util import assert_that

    records = Dataset.open(rendered).records
    config = keras.saving.load_model(checkpoint, compile=False).config
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as pipeline:
        rows, failed = retranscribe.build(pipeline, str(rendered), str(tmp_path / "out"), records, str(checkpoint),
                                          config, note_ends=note_ends)

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
        assert len(local) > 0 and len(beam_notes) == len(local)
        for field in ("onset_s", "offset_s"):
            np.testing.assert_allclose(beam_notes[field], local[field], atol=2e-3)  # MIDI ticks
        assert np.array_equal(beam_notes["pitch"], local["pitch"])


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
