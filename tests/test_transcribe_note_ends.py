"""The note-end network's decoding: segments, the quiet-run rule, block-wise scoring, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stages.io.midi import PIANO_KEYS, PIANO_LOWEST_PITCH
from transcribe.config import DecodingSettings, TranscriberConfig
from transcribe.rescorer import note_ends
from transcribe.rescorer.note_ends import (
    MAX_FRAMES,
    NUM_FEATURES,
    QUIET_FRAMES,
    CellContext,
    decode_with_ends,
    end_frames,
    segment_cells,
    segment_ends,
)
from transcribe.rescorer.rescore import NUM_FEATURES as NUM_ONSET_FEATURES
from transcribe.rescorer.rescore import build_rescorer
from transcribe.transcriber import decode_probabilities

C4 = 60 - PIANO_LOWEST_PITCH


def heads(num_frames: int) -> dict[str, np.ndarray]:
    return {name: np.zeros((num_frames, PIANO_KEYS), np.float32)
            for name in ("onsets", "offsets", "frames", "velocities")}


def test_a_segment_ends_at_the_next_onset_on_its_key_or_after_a_long_silence():
    probs = heads(200)
    probs["frames"][10:60, C4] = 0.8
    probs["frames"][60:60 + QUIET_FRAMES - 1, C4] = 0.0  # a dip one frame shorter than a silence
    probs["frames"][60 + QUIET_FRAMES - 1:120, C4] = 0.5
    starts = np.array([[10, C4], [150, C4], [5, C4 + 1], [100, C4 + 1]])
    ends = segment_ends(probs["frames"], starts)
    # C4 held over the dip, silent from 120; C4+1 never sounds: its segment stops at the onset
    # after it (5 -> 6, at least a frame) and the later one stops at once too.
    assert ends.tolist() == [120, 151, 6, 101]
    long = heads(2 * MAX_FRAMES)
    long["frames"][:, C4] = 0.9
    assert segment_ends(long["frames"], np.array([[0, C4]])).tolist() == [MAX_FRAMES]


def test_segment_cells_cover_every_frame_of_every_segment_in_order():
    starts, ends = np.array([[3, 0], [10, 5]]), np.array([6, 12])
    note, t = segment_cells(starts, ends)
    assert note.tolist() == [0, 0, 0, 1, 1] and t.tolist() == [3, 4, 5, 10, 11]


def test_a_note_ends_at_the_first_silence_of_the_quiet_run_and_survives_shorter_dips():
    starts, segment_end = np.array([[0, C4]]), np.array([12])
    note, t = segment_cells(starts, segment_end)
    sounding = np.array([0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1], bool)  # a silent onset frame, a dip, a silence
    assert end_frames(starts, segment_end, note, t, sounding, quiet_run=3).tolist() == [7]
    assert end_frames(starts, segment_end, note, t, sounding, quiet_run=2).tolist() == [3]
    assert end_frames(starts, segment_end, note, t, np.ones(12, bool), quiet_run=3).tolist() == [12]
    # Fewer silent frames than the run are enough where the segment ends with them.
    assert end_frames(starts, segment_end, note, t, np.arange(12) < 10, quiet_run=3).tolist() == [10]
    assert end_frames(starts, segment_end, note, t, np.zeros(12, bool), quiet_run=3).tolist() == [1]


def test_features_read_the_note_its_frame_and_the_other_keys():
    probs = heads(60)
    probs["frames"][10:30, C4] = np.linspace(0.9, 0.2, 20)
    probs["frames"][10:30, C4 + 12] = 0.6
    probs["velocities"][10, C4] = 0.7
    probs["offsets"][29, C4] = 0.9
    starts = np.array([[10, C4]])
    segment_end = segment_ends(probs["frames"], starts)
    note, t = segment_cells(starts, segment_end)
    features = CellContext(probs).features(starts, segment_end, note, t)
    assert features.shape == (len(t), NUM_FEATURES) and len(t) == 20
    at_19 = features[t.tolist().index(29)]
    np.testing.assert_allclose(at_19[3], probs["frames"][29, C4])  # the frame head at the frame itself
    assert at_19[4] == 0.0 and at_19[2] == np.float32(probs["frames"][28, C4])  # one frame after and before
    assert at_19[len(note_ends.FRAME_OFFSETS) + 1] == np.float32(0.9)  # the offset head there
    np.testing.assert_allclose(at_19[len(note_ends.FRAME_OFFSETS) + 4], np.log1p(19))  # frames since the onset
    assert at_19[len(note_ends.FRAME_OFFSETS) + 6] == np.float32(0.7)  # the note's velocity
    assert at_19[-1] == np.float32(0.6) and at_19[-2] == 0.0  # the octave above, the octave below


@pytest.mark.slow
def test_scoring_block_by_block_decides_as_scoring_at_once(monkeypatch):
    rng = np.random.default_rng(3)
    probs = heads(300)
    for name in probs:
        probs[name][:] = rng.random(probs[name].shape) ** 3
    starts = np.argwhere(rng.random((300, PIANO_KEYS)) < 0.01)
    weights = rng.normal(size=NUM_FEATURES).astype(np.float32)

    def logits(features):
        return (features - features.mean(axis=0)) @ weights

    def by_cell(features):  # scores each cell alone, so blocks cannot change it
        return features @ weights - 1.0

    whole = decode_with_ends(probs, starts, by_cell, 0.5, 3)
    whole_by_block = decode_with_ends(probs, starts, logits, 0.5, 3)
    monkeypatch.setattr(note_ends, "CELL_BLOCK", 17)
    assert np.array_equal(decode_with_ends(probs, starts, by_cell, 0.5, 3), whole)
    # Blocks are real: a score that depends on its block's other cells decides otherwise.
    assert not np.array_equal(decode_with_ends(probs, starts, logits, 0.5, 3), whole_by_block)


def constant_logit(layer, logit: float) -> None:
    """Make a Dense logit layer give `logit` whatever its input (zero weights, a bias)."""
    layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
    layer.bias.assign(np.full(layer.bias.shape, logit, np.float32))


def note_end_rescorer(end_logit: float | None):
    """Accepts every onset candidate; its note-end network (none when `end_logit` is None) gives
    every frame `end_logit`."""
    rng = np.random.default_rng(0)
    end_features = None if end_logit is None else rng.normal(size=(32, NUM_FEATURES)).astype(np.float32)
    rescorer = build_rescorer(rng.normal(size=(32, NUM_ONSET_FEATURES)).astype(np.float32), end_features=end_features)
    constant_logit(rescorer.logit, 5.0)
    if end_logit is not None:
        constant_logit(rescorer.end_logit, end_logit)
    return rescorer


def test_decoding_with_note_ends_follows_the_network_not_the_frame_threshold():
    config = TranscriberConfig.tiny()
    probs = heads(100)
    probs["onsets"][10, C4] = 0.9
    probs["frames"][10:14, C4] = 0.9
    probs["frames"][14:40, C4] = 0.05  # a pedal-held tail below the frame threshold
    probs["velocities"][10, C4] = 0.5
    fps = config.frames_per_second
    held = decode_probabilities(probs, config, note_end_rescorer(end_logit=4.0))
    assert len(held) == 1 and held[0]["pitch"] == C4 + PIANO_LOWEST_PITCH and held[0]["velocity"] == 64
    assert round(held[0]["onset_s"] * fps) == 10 and round(held[0]["offset_s"] * fps) == 40  # the segment's end
    cut = decode_probabilities(probs, config, note_end_rescorer(end_logit=-4.0))
    assert round(cut[0]["offset_s"] * fps) == 11  # nothing sounds: a frame long
    without = decode_probabilities(probs, config, note_end_rescorer(end_logit=None))
    assert round(without[0]["offset_s"] * fps) == 14  # the frame threshold's end


def test_a_rescorer_with_note_ends_survives_a_keras_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    rescorer = build_rescorer(rng.normal(size=(64, NUM_ONSET_FEATURES)).astype(np.float32),
                              end_features=rng.normal(size=(64, NUM_FEATURES)).astype(np.float32))
    rescorer.sounding_threshold, rescorer.quiet_run = 0.6, 4
    rescorer.save(tmp_path / "r.keras")
    loaded = keras.saving.load_model(tmp_path / "r.keras", compile=False)
    assert (loaded.note_ends, loaded.sounding_threshold, loaded.quiet_run) == (True, 0.6, 4)
    cells = rng.normal(size=(10, NUM_FEATURES)).astype(np.float32)
    np.testing.assert_allclose(loaded.end_logits(cells), rescorer.end_logits(cells), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_transcriber_loaded_without_note_ends_ends_notes_at_the_thresholds(checkpoints, tmp_path):
    import shutil

    from transcribe.rescorer.rescore import rescorer_path
    from transcribe.transcriber import Transcriber

    config = TranscriberConfig.tiny()
    checkpoint = shutil.copy(checkpoints / "transcriber.keras", tmp_path / "mine.keras")  # the session's tiny one
    note_end_rescorer(end_logit=4.0).save(rescorer_path(checkpoint))
    probs = heads(100)
    probs["onsets"][10, C4], probs["frames"][10:14, C4], probs["frames"][14:40, C4] = 0.9, 0.9, 0.05
    fps = config.frames_per_second
    with_ends, without = Transcriber.load(checkpoint), Transcriber.load(checkpoint, note_ends=False)
    assert with_ends.rescorer.note_ends and not without.rescorer.note_ends
    assert round(with_ends.notes(probs)[0]["offset_s"] * fps) == 40
    assert round(without.notes(probs)[0]["offset_s"] * fps) == 14  # the tiny config's frame threshold, 0.5


@pytest.mark.slow
def test_the_stage_without_note_ends_uses_the_thresholds_and_keeps_its_outputs_apart(checkpoints, tmp_path):
    import shutil

    from transcribe.rescorer.rescore import rescorer_path
    from transcribe.stage import TranscribeStage

    checkpoint = shutil.copy(checkpoints / "transcriber.keras", tmp_path / "mine.keras")  # the session's tiny one
    note_end_rescorer(end_logit=4.0).save(rescorer_path(checkpoint))
    with_ends, without = TranscribeStage(checkpoint), TranscribeStage(checkpoint, DecodingSettings(note_ends=False))
    assert "note_ends" not in with_ends.config()  # folders written before the switch existed still match
    assert without.config() == {**with_ends.config(), "note_ends": False}
    assert with_ends.transcriber.rescorer.note_ends and not without.transcriber.rescorer.note_ends
