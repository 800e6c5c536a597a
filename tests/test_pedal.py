"""The sustain-pedal network: labels from CC 64, decoding, key releases, training and saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stages.io.midi import NOTE_DTYPE, apply_sustain, notes_from_sequence, sequence_from_notes
from transcribe.pedal.pedal import (
    DOWN,
    PRESSED,
    RELEASED,
    PedalConfig,
    PedalTranscriber,
    add_pedal,
    build_pedal_model,
    decode_pedal,
    key_releases,
    pedal_intervals,
    pedal_roll,
)
from transcribe.pedal.training import pedal_metrics, train_pedal

FPS = 31.25


def notes(rows) -> np.ndarray:
    return np.array([tuple(r) for r in rows], dtype=NOTE_DTYPE)


def with_pedal(rows, changes):
    sequence = sequence_from_notes(notes(rows))
    for time, value in changes:
        sequence.control_changes.add(time=time, control_number=64, control_value=value, instrument=0)
    return sequence


def test_intervals_and_roll_follow_cc64():
    sequence = with_pedal([(0.0, 3.0, 60, 80)], [(0.5, 100), (0.6, 90), (1.0, 20), (2.0, 127)])
    sequence.total_time = 3.0
    intervals = pedal_intervals(sequence)
    np.testing.assert_allclose(intervals, [[0.5, 1.0], [2.0, 3.0]])  # 90 still down; held to the end
    roll = pedal_roll(intervals, int(3.0 * FPS), FPS)
    assert roll[:, PRESSED].nonzero()[0].tolist() == [16, 62]
    assert roll[:, RELEASED].nonzero()[0].tolist() == [31]  # the last press never ends in the span
    assert roll[16:31, DOWN].all() and not roll[31:62, DOWN].any() and roll[62:, DOWN].all()


def test_decoding_hand_built_probabilities():
    probs = np.zeros((200, 3), np.float32)
    probs[20:60, DOWN] = 0.9
    probs[61, DOWN] = 0.2  # a one-frame dip: the same press
    probs[62:80, DOWN] = 0.8
    probs[18, PRESSED] = 0.7  # the press head fires two frames early: the edge moves to it
    probs[80, RELEASED] = 0.1  # too weak to move the edge
    probs[120:122, DOWN] = 0.9  # too short to be a press
    probs[150:190, DOWN] = 0.6
    probs[192, RELEASED] = 0.9
    intervals = decode_pedal(probs, PedalConfig(), FPS)
    np.testing.assert_allclose(intervals * FPS, [[18, 80], [150, 192]])


def test_key_releases_then_the_pedal_give_back_the_sounding_notes():
    # As sounded (pedal applied): A held past a press at 1.0 until the release at 2.5; B struck under
    # the pedal and sounding to the release; C after the release, no pedal.
    sounding = notes([(0.5, 2.5, 60, 80), (1.5, 2.5, 64, 70), (3.0, 3.4, 67, 60)])
    intervals = np.array([[1.0, 2.5]])
    released = key_releases(sounding, intervals)
    assert released["offset_s"].tolist() == pytest.approx([1.0, 1.6, 3.4])
    sequence = add_pedal(sequence_from_notes(released), intervals)
    assert [(c.time, c.control_value) for c in sequence.control_changes] == [(1.0, 127), (2.5, 0)]
    again = notes_from_sequence(apply_sustain(sequence))
    np.testing.assert_allclose(again["offset_s"], sounding["offset_s"], atol=1e-6)
    np.testing.assert_allclose(again["onset_s"], sounding["onset_s"], atol=1e-6)


def test_metrics_count_presses_within_50_ms():
    reference = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert pedal_metrics(reference, reference)["pedal/f1"] == 1.0
    shifted = reference + [[0.04, 0.0], [0.06, 0.0]]
    assert pedal_metrics(reference, shifted)["pedal/f1"] == pytest.approx(0.5)


@pytest.mark.slow
def test_tiny_pedal_network_trains_saves_and_reloads(preprocessed, tmp_path):
    config = PedalConfig.tiny()
    model = train_pedal(preprocessed, tmp_path / "run", config, steps=2, steps_per_epoch=1)
    assert (tmp_path / "run" / "best.keras").exists()
    reloaded = PedalTranscriber.load(tmp_path / "run" / "last.keras", FPS)
    mel = np.random.default_rng(0).normal(size=(300, 229)).astype(np.float32)
    chunked = PedalTranscriber(reloaded.model, FPS, chunk_frames=128, overlap_frames=16).probabilities(mel)
    whole = keras.ops.convert_to_numpy(keras.ops.sigmoid(model(mel[None])))[0]
    assert chunked.shape == (300, 3) and np.all((chunked >= 0) & (chunked <= 1))
    np.testing.assert_allclose(chunked[20:-20], whole[20:-20], atol=0.05)  # stitching sees enough context


def test_model_shapes():
    model = build_pedal_model(PedalConfig.tiny(), 229)
    assert tuple(model(np.zeros((2, 50, 229), np.float32)).shape) == (2, 50, 3)


def tiny_pair(checkpoints, tmp_path):
    """A tiny transcriber with an (untrained) tiny pedal network beside it."""
    import shutil

    from transcribe.config import TranscriberConfig
    from transcribe.pedal.pedal import pedal_checkpoint

    checkpoint = tmp_path / "transcriber.keras"
    shutil.copy(checkpoints / "transcriber.keras", checkpoint)
    build_pedal_model(PedalConfig.tiny(), TranscriberConfig.tiny().mel_bins).save(pedal_checkpoint(checkpoint))
    return checkpoint


def test_cc64_without_a_pedal_network_is_refused_by_name(checkpoints):
    from stages.contract import UsageError
    from transcribe.stage import TranscribeStage

    with pytest.raises(UsageError, match=r"transcriber\.pedal\.keras not found.*w2m2w train pedal"):
        TranscribeStage(checkpoints / "transcriber.keras", pedal="cc64")
    with pytest.raises(ValueError, match="baked"):
        TranscribeStage(checkpoints / "transcriber.keras", pedal="soft")


@pytest.mark.slow
def test_cc64_writes_the_pedal_and_ends_notes_at_key_release(checkpoints, recordings, tmp_path, monkeypatch):
    from stages.io.midi import read_note_sequence
    from transcribe.stage import TranscribeStage

    checkpoint = tiny_pair(checkpoints, tmp_path)
    sounding = notes([(0.1, 1.5, 60, 80), (0.6, 1.5, 64, 80)])
    baked, cc64 = TranscribeStage(checkpoint), TranscribeStage(checkpoint, pedal="cc64")
    for stage in (baked, cc64):  # known notes and pedal: the untrained networks' output is noise
        monkeypatch.setattr(stage.transcriber, "notes", lambda probs: sounding.copy())
    monkeypatch.setattr(cc64.pedal, "intervals", lambda mel: np.array([[0.4, 1.5]]))
    assert baked.config() != cc64.config()  # a folder written one way is not taken for the other
    for stage, out in ((baked, tmp_path / "baked"), (cc64, tmp_path / "cc64")):
        assert stage.run(recordings / "piece0.wav", out).ok
    plain = read_note_sequence(tmp_path / "baked" / "piece0.midi")
    pedalled = read_note_sequence(tmp_path / "cc64" / "piece0.midi")
    assert not [c for c in plain.control_changes if c.control_number == 64]
    changes = [(round(c.time, 2), c.control_value) for c in pedalled.control_changes if c.control_number == 64]
    assert changes == [(0.4, 127), (1.5, 0)]
    assert sorted((n.pitch, round(n.end_time, 2)) for n in pedalled.notes) == [(60, 0.4), (64, 0.7)]
    again = notes_from_sequence(apply_sustain(pedalled))  # the pedal gives back the notes as they sounded
    np.testing.assert_allclose(np.sort(again["offset_s"]), [1.5, 1.5], atol=0.01)


@pytest.mark.slow
def test_cc64_with_real_networks_writes_paired_pedal_events(checkpoints, recordings, tmp_path):
    from stages.io.midi import read_note_sequence
    from transcribe.stage import TranscribeStage

    stage = TranscribeStage(tiny_pair(checkpoints, tmp_path), pedal="cc64")
    assert stage.run(recordings, tmp_path / "out").ok
    for midi in (tmp_path / "out").glob("*.midi"):
        values = [c.control_value for c in sorted(read_note_sequence(midi).control_changes, key=lambda c: c.time)
                  if c.control_number == 64]
        assert values == [127, 0] * (len(values) // 2)  # every press released, none twice


@pytest.mark.slow
def test_tune_pedal_picks_settings_from_the_grid_and_applies_them(preprocessed, tmp_path):
    from transcribe.pedal.training import TUNING_GRID, tune_pedal

    model = build_pedal_model(PedalConfig.tiny(), 229)
    model.save(tmp_path / "pedal.keras")
    chosen = tune_pedal(preprocessed, tmp_path / "pedal.keras", spans=4, apply=True, cache_dir=tmp_path / "cache")
    assert all(chosen[name] in values for name, values in TUNING_GRID.items())
    reloaded = PedalTranscriber.load(tmp_path / "pedal.keras", FPS).model.config
    assert (reloaded.threshold, reloaded.event_threshold, reloaded.min_frames) == (
        chosen["threshold"], chosen["event_threshold"], chosen["min_frames"])
    assert not list(tmp_path.glob("*.partial*"))


def test_frame_f1_counts_the_frames_held_down():
    from transcribe.pedal.training import frame_f1

    assert frame_f1(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])) == 1.0
    assert frame_f1(np.array([[0.0, 1.0]]), np.array([[0.5, 1.0]])) == pytest.approx(2 * 50 / 150, abs=0.02)
    assert frame_f1(np.zeros((0, 2)), np.zeros((0, 2))) == 1.0
