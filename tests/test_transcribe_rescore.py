"""The onset rescorer: candidate runs, what it reads about them, decoding with it, saving it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stages.io.midi import PIANO_KEYS, PIANO_LOWEST_PITCH
from transcribe.config import TranscriberConfig
from transcribe.rescorer.rescore import (
    FRAME_OFFSETS,
    NUM_FEATURES,
    RELATED_KEYS,
    RUN_FEATURES,
    accepted_onsets,
    build_rescorer,
    candidate_features,
    candidates,
    rescorer_path,
)
from transcribe.transcriber import Transcriber, decode_probabilities, load_rescorer

C4 = 60 - PIANO_LOWEST_PITCH


def heads(num_frames: int = 40) -> dict[str, np.ndarray]:
    return {name: np.zeros((num_frames, PIANO_KEYS), np.float32)
            for name in ("onsets", "offsets", "frames", "velocities")}


def two_struck_notes() -> dict[str, np.ndarray]:
    """C4 struck at frame 10 (its onset peaks there) and its octave C5 at frame 20, each held."""
    probs = heads()
    probs["onsets"][9:12, C4] = (0.2, 0.9, 0.3)
    probs["onsets"][19:21, C4 + 12] = (0.6, 0.4)
    probs["frames"][10:18, C4] = 0.8
    probs["frames"][19:30, C4 + 12] = 0.7
    probs["velocities"][10, C4] = 0.5
    return probs


def constant_rescorer(logit: float, accept_threshold: float = 0.5):
    """A rescorer that gives every candidate the same probability (zero weights, a bias)."""
    rescorer = build_rescorer(np.random.default_rng(0).normal(size=(32, NUM_FEATURES)).astype(np.float32))
    rescorer.logit.kernel.assign(np.zeros(rescorer.logit.kernel.shape, np.float32))
    rescorer.logit.bias.assign(np.full(rescorer.logit.bias.shape, logit, np.float32))
    rescorer.accept_threshold = accept_threshold
    return rescorer


def test_candidates_are_runs_above_the_threshold_with_their_peaks():
    runs = candidates(two_struck_notes()["onsets"], threshold=0.25)
    assert runs.tolist() == [[C4, 10, 12, 10], [C4 + 12, 19, 21, 19]]
    # A lower threshold lengthens the run but keeps its peak.
    assert candidates(two_struck_notes()["onsets"], threshold=0.1).tolist()[0] == [C4, 9, 12, 10]


def test_features_read_the_run_the_key_and_its_related_keys():
    probs = two_struck_notes()
    probs["onsets"][20, C4] = 0.95  # C4 strongly struck beside its octave's candidate at frame 19
    runs = candidates(probs["onsets"], threshold=0.25)
    features = candidate_features(probs, runs)
    assert features.shape == (3, NUM_FEATURES)
    first, octave = features[0], features[[tuple(r[:2]) for r in runs].index((C4 + 12, 19))]
    np.testing.assert_allclose(first[:6], [0.9, 2, 1.2, 0.0, 0.5, C4], rtol=1e-6)
    np.testing.assert_allclose(first[8:RUN_FEATURES], [0.2, 0.3, 0.9], rtol=1e-6)  # around the peak; the moment's best
    frames_at = dict(zip(FRAME_OFFSETS, first[RUN_FEATURES: RUN_FEATURES + len(FRAME_OFFSETS)]))
    assert frames_at[0] == np.float32(0.8) and frames_at[8] == 0.0 and frames_at[-2] == 0.0  # held frames 10-17
    related = RUN_FEATURES + len(FRAME_OFFSETS)
    related_onsets = dict(zip(RELATED_KEYS, octave[related: related + len(RELATED_KEYS)]))
    assert related_onsets[-12] == np.float32(0.95) and related_onsets[12] == 0.0
    # The earlier C4 onset (frame 10) lies within the lookback of the C4 candidate at frame 20.
    later_c4 = features[[tuple(r[:2]) for r in runs].index((C4, 20))]
    assert later_c4[7] == np.float32(0.9)


def test_notes_start_at_the_peaks_of_accepted_candidates_only():
    config = TranscriberConfig.tiny()
    probs = two_struck_notes()
    everything = decode_probabilities(probs, config, constant_rescorer(logit=5.0))
    assert [(round(n["onset_s"] * config.frames_per_second), n["pitch"] - PIANO_LOWEST_PITCH) for n in everything] \
        == [(10, C4), (19, C4 + 12)]
    assert len(decode_probabilities(probs, config, constant_rescorer(logit=-5.0))) == 0
    # The accepted onsets are single frames, whatever the threshold the decoder is given.
    onsets = accepted_onsets(constant_rescorer(logit=5.0), probs)
    assert onsets.sum() == 2 and onsets[10, C4] == 1 and onsets[19, C4 + 12] == 1
    # The note still lasts while its frames are active.
    assert round(everything[0]["offset_s"] * config.frames_per_second) == 18


def test_rescorer_keras_round_trip_keeps_outputs_and_thresholds(tmp_path):
    features = np.random.default_rng(1).normal(size=(64, NUM_FEATURES)).astype(np.float32)
    rescorer = build_rescorer(features, candidate_threshold=0.07)
    rescorer.accept_threshold = 0.42
    path = tmp_path / "r.keras"
    rescorer.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert (loaded.candidate_threshold, loaded.accept_threshold) == (0.07, 0.42)
    np.testing.assert_allclose(loaded.predict_on_batch(features), rescorer.predict_on_batch(features),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_transcriber_loads_the_rescorer_beside_its_checkpoint(checkpoints, tmp_path):
    import shutil

    checkpoint = shutil.copy(checkpoints / "transcriber.keras", tmp_path / "mine.keras")  # the session's tiny one
    assert load_rescorer(checkpoint) is None and Transcriber.load(checkpoint).rescorer is None
    constant_rescorer(logit=1.0, accept_threshold=0.3).save(rescorer_path(checkpoint))
    assert rescorer_path(checkpoint).name == "mine.rescorer.keras"
    assert Transcriber.load(checkpoint).rescorer.accept_threshold == 0.3
    assert Transcriber.load(checkpoint, rescore=False).rescorer is None
