"""The transcriber: labels, model properties, chunked inference, save/load, training, the CLI."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile

from stages.io.midi import NOTE_DTYPE, apply_sustain, notes_from_sequence, read_note_sequence
from stages.io.pianoroll import piano_roll
from tests.conftest import make_midi
from transcribe.config import TranscriberConfig
from transcribe.features import log_mel, num_frames
from transcribe.onsets_frames.model import build_model
from transcribe.transcriber import Transcriber

TINY = TranscriberConfig.tiny()
FPS = TINY.frames_per_second


def test_labels_from_a_pedalled_performance(tmp_path):
    notes = [(0.5, 0.7, 60, 100), (1.0, 1.3, 64, 50)]
    sequence = read_note_sequence(make_midi(tmp_path / "a.mid", notes, pedal=[(0.6, 127), (2.0, 0)]))
    labels = piano_roll(notes_from_sequence(apply_sustain(sequence)), 100, FPS)
    c4, e4 = 60 - 21, 64 - 21
    # The pedal holds C4 from its release (0.7 s) until it lifts at 2.0 s.
    assert labels.frames[:, c4].nonzero()[0].tolist() == list(range(16, 63))  # 2.0 s = frame 62.5, rounded up
    assert labels.onsets[:, c4].nonzero()[0].tolist() == [16] and labels.offsets[:, c4].nonzero()[0].tolist() == [63]
    assert labels.velocities[16, c4] == 100 and labels.velocities[31, e4] == 50
    assert labels.velocities.sum() == 150 and labels.onsets.sum() == 2
    # The held velocity lasts as long as the key sounds (the synthesizer's conditioning).
    assert set(labels.held_velocities[16:63, c4]) == {100} and labels.held_velocities[63, c4] == 0


def test_labels_of_a_note_already_sounding_have_frames_but_no_onset():
    notes = np.array([(-0.5, 0.3, 70, 80), (2.9, 4.0, 72, 90)], dtype=NOTE_DTYPE)
    labels = piano_roll(notes, 96, FPS)  # 96 frames = 3.07 s
    key = 70 - 21
    assert labels.frames[:9, key].all() and not labels.frames[9:, key].any()  # ends at 0.3 s = frame 9.4
    assert not labels.onsets[:, key].any()
    assert labels.onsets[91, 72 - 21] == 1 and not labels.offsets[:, 72 - 21].any()  # ends after the clip


@pytest.mark.slow
def test_model_heads_shapes_and_onset_stack_untouched_by_frame_loss():
    import tensorflow as tf

    model = build_model(TINY)
    mel = np.random.default_rng(0).standard_normal((2, 40, TINY.mel_bins)).astype(np.float32)
    outputs = model(mel)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {k: (2, 40, 88) for k in
                                                               ("onsets", "offsets", "frames", "velocities")}
    with tf.GradientTape() as tape:
        frame_loss = tf.reduce_sum(model(mel, training=True)["frames"])
    onset_weights = model.onset_out.trainable_weights + model.onset_lstm.trainable_weights
    gradients = tape.gradient(frame_loss, onset_weights + model.frame_lstm.trainable_weights)
    assert all(g is None or not np.any(g.numpy()) for g in gradients[:len(onset_weights)])
    assert any(g is not None and np.any(g.numpy()) for g in gradients[len(onset_weights):])


@pytest.mark.slow
def test_outputs_at_a_frame_do_not_depend_on_distant_audio_through_the_convolutions():
    """The acoustic stacks see +-3 frames; with BiLSTMs removed from the comparison by looking
    at the velocity head (no LSTM), a change far away leaves a frame's output unchanged."""
    model = build_model(TINY)
    mel = np.random.default_rng(1).standard_normal((1, 60, TINY.mel_bins)).astype(np.float32)
    changed = mel.copy()
    changed[0, 40:] += 5.0
    a, b = model(mel)["velocities"], model(changed)["velocities"]
    np.testing.assert_allclose(np.asarray(a)[0, :36], np.asarray(b)[0, :36], atol=1e-5)
    assert np.abs(np.asarray(a)[0, 40:] - np.asarray(b)[0, 40:]).max() > 1e-3


@pytest.mark.slow
def test_keras_save_and_load_round_trip(tmp_path):
    model = build_model(TINY)
    mel = np.random.default_rng(2).standard_normal((1, 50, TINY.mel_bins)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.config == TINY
    for name, value in model(mel).items():
        np.testing.assert_allclose(np.asarray(loaded(mel)[name]), np.asarray(value), atol=1e-6)


@pytest.mark.slow
def test_chunked_inference_equals_whole_clip_away_from_chunk_edges():
    keras.utils.set_random_seed(0)
    model = build_model(TINY)
    mel = np.random.default_rng(3).standard_normal((500, TINY.mel_bins)).astype(np.float32)
    chunked = Transcriber(model, batch_chunks=2).predict(mel)
    whole = {k: 1 / (1 + np.exp(-np.asarray(v)[0])) for k, v in model(mel[None]).items() if k != "velocities"}
    # Chunks keep frames [96 i, 96 (i + 1)) and see 16 more on each side: away from those edges
    # (>= 40 frames of context each way) the BiLSTMs' memory of the cut has faded.
    distance = np.minimum(np.arange(500) % 96, 95 - np.arange(500) % 96)
    away = distance >= 24
    for name in ("onsets", "offsets", "frames"):
        assert chunked[name].shape == (500, 88)
        np.testing.assert_allclose(chunked[name][away], whole[name][away], atol=1e-3)
        np.testing.assert_allclose(chunked[name], whole[name], atol=0.05)
    short = mel[:100]  # one window, padded with silence after the end
    np.testing.assert_allclose(Transcriber(model).predict(short)["frames"][:70],
                               1 / (1 + np.exp(-np.asarray(model(short[None])["frames"])[0, :70])), atol=1e-3)


def test_features_have_one_frame_per_hop():
    audio = np.random.default_rng(4).standard_normal(16000 * 2).astype(np.float32) * 0.1
    mel = log_mel(audio, TINY)
    assert mel.shape == (num_frames(len(audio), TINY), 229) == (63, 229)
    assert np.isfinite(mel).all()
    quiet = log_mel(np.zeros(8000, np.float32), TINY)
    assert np.allclose(quiet, np.log(1e-6))


@pytest.fixture(scope="module")
def trained_tiny(preprocessed, tmp_path_factory) -> Path:
    from transcribe.onsets_frames.training import train

    run = tmp_path_factory.mktemp("run")
    train(preprocessed, run, TINY, steps=4, steps_per_epoch=2, validation_spans=3)
    return run


@pytest.mark.slow
def test_training_writes_checkpoints_logs_and_resumes(trained_tiny, preprocessed):
    from transcribe.onsets_frames.training import train

    with open(trained_tiny / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and "val_note_f1" in rows[0] and float(rows[0]["loss"]) > 0
    assert (trained_tiny / "best.keras").exists() and (trained_tiny / "last.keras").exists()
    assert any((trained_tiny / "logs").rglob("events.out.tfevents*"))
    assert (trained_tiny / "history.png").stat().st_size > 0
    train(preprocessed, trained_tiny, TINY, steps=6, steps_per_epoch=2, validation_spans=3)
    with open(trained_tiny / "history.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2]  # resumed at epoch 3
    with pytest.raises(ValueError, match="another config"):
        train(preprocessed, trained_tiny, TranscriberConfig.default(), steps=2, steps_per_epoch=2)


@pytest.mark.slow
def test_training_can_start_from_a_trained_transcriber(trained_tiny, preprocessed, tmp_path):
    from transcribe.onsets_frames.training import train

    frozen = dataclasses.replace(TINY, learning_rate=0.0)  # no update: the run keeps what it started from
    train(preprocessed, tmp_path / "run", frozen, steps=1, steps_per_epoch=1, validation_spans=1,
          initial_weights=trained_tiny / "best.keras")
    # Trainable weights only: batch normalization's moving statistics move without the optimizer.
    def trainable(path):
        return [np.asarray(w) for w in keras.saving.load_model(path, compile=False).trainable_weights]

    start, after = trainable(trained_tiny / "best.keras"), trainable(tmp_path / "run" / "last.keras")
    assert len(start) == len(after) > 0
    assert all(np.array_equal(a, b) for a, b in zip(start, after))
    assert any(np.any(w != 0) for w in start)


def test_low_register_weighting_moves_the_loss_towards_the_bass_and_keeps_its_scale():
    from transcribe.onsets_frames.model import KeyWeightedCrossentropy

    rng = np.random.default_rng(7)
    labels = (rng.uniform(size=(2, 5, 88)) < 0.1).astype(np.float32)
    logits = rng.normal(size=(2, 5, 88)).astype(np.float32)
    plain = float(keras.losses.BinaryCrossentropy(from_logits=True)(labels, logits))
    assert float(KeyWeightedCrossentropy(48, 1.0)(labels, logits)) == pytest.approx(plain, rel=1e-5)
    # A wrong guess on one key costs 3x as much below C3 as above it, at a mean weight of 1.
    loss = KeyWeightedCrossentropy(48, 3.0)
    silence = np.zeros((1, 1, 88), np.float32)
    b2, c4 = silence.copy(), silence.copy()
    b2[..., 47 - 21], c4[..., 60 - 21] = 1.0, 1.0  # one key sounding that the model is sure is silent
    sure_silent = np.full((1, 1, 88), -4.0, np.float32)

    def cost(labels):
        return float(loss(labels, sure_silent) - loss(silence, sure_silent))

    assert cost(b2) == pytest.approx(3 * cost(c4), rel=1e-4)
    assert np.mean(loss.key_weights) == pytest.approx(1.0)
    # The weights travel with a saved run (a resumed run trains on with the same loss).
    assert KeyWeightedCrossentropy.from_config(loss.get_config()).key_weights == loss.key_weights


@pytest.mark.slow
def test_training_weighted_towards_the_low_register_resumes_with_its_loss(preprocessed, tmp_path):
    from transcribe.onsets_frames.model import KeyWeightedCrossentropy
    from transcribe.onsets_frames.training import train

    weighted = dataclasses.replace(TINY, low_register_weight=3.0)
    train(preprocessed, tmp_path, weighted, steps=1, steps_per_epoch=1, validation_spans=1)
    resumed = keras.saving.load_model(tmp_path / "last.keras")
    assert isinstance(resumed.loss["onsets"], KeyWeightedCrossentropy) and resumed.loss["onsets"].weight == 3.0
    assert resumed.config.low_register_weight == 3.0


@pytest.mark.slow
def test_cli_transcribes_a_folder_and_reports_bad_files(trained_tiny, rendered, tmp_path, capsys):
    from pipeline import main

    recordings = tmp_path / "in"
    (recordings / "sub").mkdir(parents=True)
    wav = next(rendered.rglob("*.wav"))
    audio, rate = soundfile.read(wav)
    soundfile.write(recordings / "sub" / "piece.flac", np.stack([audio, audio], 1), rate)  # stereo FLAC
    soundfile.write(recordings / "silent.wav", np.zeros(16000), 16000)
    (recordings / "broken.mp3").write_bytes(b"ID3 not really")
    argv = ["transcribe", str(recordings), str(tmp_path / "out"), "--checkpoint", str(trained_tiny / "last.keras"),
            "--csv"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "silent.wav: audio is silent" in out and "broken.mp3" in out
    assert (tmp_path / "out" / "sub" / "piece.midi").read_bytes().startswith(b"MThd")
    assert (tmp_path / "out" / "sub" / "piece.csv").read_text().startswith("onset_s,offset_s,pitch,velocity")
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == [
        "piece.csv", "piece.midi", "transcribe.stage.json"]
    assert main(argv) == 1 and "1 skipped" in capsys.readouterr().out


@pytest.mark.parametrize("block", [1, 511, 512, 2048, 5000, 40000])
def test_streamed_features_equal_whole_clip_features(block):
    from transcribe.features import log_mel_blocks

    audio = np.random.default_rng(5).standard_normal(33_333).astype(np.float32) * 0.1
    blocks = [audio[i: i + block] for i in range(0, len(audio), block)]
    np.testing.assert_allclose(log_mel_blocks(blocks, TINY), log_mel(audio, TINY), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_transcribe_and_score_writes_midi_scores_and_piano_rolls(trained_tiny, rendered, tmp_path, capsys):
    from maestro.metadata import Dataset
    from transcribe.evaluate import transcribe_and_score

    assert transcribe_and_score(Dataset.open(rendered), tmp_path / "t", trained_tiny / "last.keras")
    out = capsys.readouterr().out
    assert "note-with-offset-and-velocity" in out
    pictures = sorted((tmp_path / "t").rglob("*.png"))
    assert len(pictures) == 4 and all(p.read_bytes().startswith(b"\x89PNG") for p in pictures)


@pytest.mark.slow
def test_evaluation_scores_each_piece_and_breaks_scores_down_by_soundfont(rendered):
    from maestro.metadata import Dataset
    from maestro.render import read_soundfonts
    from transcribe.evaluate import evaluate, reference_notes

    dataset, soundfonts = Dataset.open(rendered), read_soundfonts(rendered)
    train = dataset.select(splits=["train"])
    assert len({soundfonts[r.audio_filename] for r in train}) == 2  # two timbres to break the scores down by
    perfect = train[0]

    class Oracle:  # hears every recording as `perfect`'s MIDI
        config = TINY

        def transcribe(self, audio):
            return reference_notes(dataset.midi_path(perfect), len(audio) / TINY.sample_rate_hz)

    result = evaluate(Oracle(), rendered, "train", progress=False)
    scores = {p["audio_filename"]: p for p in result.pieces}
    assert scores[perfect.audio_filename]["note-with-offset/f1"] == 1.0
    assert all(p["note/f1"] < 0.5 for name, p in scores.items() if name != perfect.audio_filename)
    for soundfont, mean in result.by_soundfont.items():
        pieces = [p for p in result.pieces if p["soundfont"] == soundfont]
        assert pieces and all(p["soundfont"] == soundfonts[p["audio_filename"]] for p in pieces)
        assert mean["note/f1"] == pytest.approx(np.mean([p["note/f1"] for p in pieces]))
    assert result.mean["frame/f1"] == pytest.approx(np.mean([p["frame/f1"] for p in result.pieces]))
