"""The synthesizer: causality, fast generation, the output distribution, conditioning alignment,
segment joins, save/load, training and the CLI."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from stages.io.midi import NOTE_DTYPE
from synthesize.conditioning import conditioning_roll
from synthesize.config import SynthesizerConfig
from synthesize.data import crop_inputs, dither, load_recordings
from synthesize.excitation import harmonic_excitation
from synthesize.generate import Generator, join_segments, segment_plan, set_loudness
from synthesize.mixture import (
    HALF_BIN,
    logistic_mixture_nll,
    mulaw_decode,
    mulaw_encode,
    sample_logistic_mixture,
    sample_mulaw,
)
from synthesize.model import build_model, transfer_weights
from synthesize.wavenet import ROLL_CHANNELS, ContextStack
from tests.conftest import make_midi, phrase

TINY = SynthesizerConfig.tiny()
MARGIN = sum(TINY.context_dilations)


def random_inputs(frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    samples = frames * TINY.samples_per_frame
    return {"audio": (rng.uniform(-0.5, 0.5, (1, samples))).astype(np.float32),
            "roll": rng.uniform(0, 1, (1, frames + 2 * MARGIN, ROLL_CHANNELS)).astype(np.float32),
            "excitation": rng.uniform(-1, 1, (1, samples, TINY.excitation_channels)).astype(np.float32)}


def test_output_at_t_does_not_depend_on_later_inputs():
    keras.utils.set_random_seed(0)
    model = build_model(TINY)
    inputs = random_inputs(4)
    audio = tf.Variable(inputs["audio"])
    with tf.GradientTape() as tape:
        outputs = model({**inputs, "audio": audio})
        loss = tf.reduce_sum(outputs[0, 100] * tf.random.normal(outputs.shape[-1:]))
    gradient = tape.gradient(loss, audio).numpy()[0]
    assert np.abs(gradient[101:]).max() == 0.0
    assert np.abs(gradient[100 - TINY.receptive_field + 1: 101]).max() > 0.0
    assert np.abs(gradient[: 100 - TINY.receptive_field + 1]).max() == 0.0  # nor before the receptive field


@pytest.mark.parametrize("output", ["logistic", "mulaw"])
def test_fast_generation_equals_the_parallel_forward_pass(output):
    import dataclasses

    keras.utils.set_random_seed(1)
    model = build_model(dataclasses.replace(TINY, output=output))
    inputs = random_inputs(3, seed=1)
    parallel = np.asarray(model(inputs))[0]
    conditioning = np.asarray(model.condition(inputs["roll"], inputs["excitation"]))
    queues, stepped = model.empty_queues(1), []
    for position in range(parallel.shape[0]):
        params, queues = model.step(inputs["audio"][:, position], conditioning[:, position], queues, position)
        stepped.append(np.asarray(params)[0])
    np.testing.assert_allclose(np.stack(stepped), parallel, atol=1e-4)


def test_compiled_generation_is_reproducible_and_feeds_back_its_samples():
    keras.utils.set_random_seed(2)
    model = build_model(TINY)
    inputs = random_inputs(5, seed=2)
    conditioning = np.asarray(model.condition(inputs["roll"], inputs["excitation"]))
    generator = Generator(model, chunk_samples=96)
    audio = generator.run(conditioning, seed=7)
    assert audio.shape == (1, 5 * TINY.samples_per_frame) and np.abs(audio).max() <= 1.0
    np.testing.assert_array_equal(audio, generator.run(conditioning, seed=7))
    assert not np.array_equal(audio, generator.run(conditioning, seed=8))
    noiseless = Generator(model, chunk_samples=96, temperature=0.0)
    np.testing.assert_array_equal(noiseless.run(conditioning, seed=7), noiseless.run(conditioning, seed=8))
    # Sample for sample: the parallel pass, teacher-forced on the generated audio, gives the
    # distributions the compiled loop sampled from; the same noise picks the same samples.
    rng = np.random.default_rng(7)
    noise = np.concatenate([rng.uniform(size=(1, 96, 2)) for _ in range(4)], axis=1).astype(np.float32)
    previous = np.concatenate([[0.0], audio[0, :-1]]).astype(np.float32)[None]
    params = np.asarray(model({**inputs, "audio": previous}))[0]
    resampled = np.asarray(sample_logistic_mixture(params, TINY.mixtures, noise[0, :320, 0], noise[0, :320, 1]))
    np.testing.assert_allclose(resampled, audio[0], atol=1e-4)


def test_mixture_loss_matches_numerical_bin_probabilities():
    from scipy.special import expit

    means, log_scales, weights = np.array([-0.3, 0.4]), np.log([0.05, 0.2]), np.array([0.25, 0.75])
    params = np.concatenate([np.log(weights), means, log_scales]).astype(np.float32)
    targets = np.array([-0.31, 0.0, 0.45, 0.9], np.float32)
    probabilities = [sum(w * (expit((x + HALF_BIN - m) / np.exp(s)) - expit((x - HALF_BIN - m) / np.exp(s)))
                         for w, m, s in zip(weights, means, log_scales)) for x in targets]
    expected = -np.mean(np.log(probabilities))
    got = float(logistic_mixture_nll(targets, np.tile(params, (4, 1)), 2))
    assert got == pytest.approx(expected, rel=1e-3)
    # The edge bins take the tails: a sample at full scale is likely under a mean beyond it.
    edge = np.array([0.0, 1.2, np.log(0.01)], np.float32)
    assert float(logistic_mixture_nll(np.array([1.0], np.float32), edge[None], 1)) < 0.01


def test_mixture_sampler_draws_components_by_weight():
    rng = np.random.default_rng(0)
    params = np.tile(np.array([np.log(0.3), np.log(0.7), -0.5, 0.5, np.log(0.01), np.log(0.01)], np.float32),
                     (20000, 1))
    samples = np.asarray(sample_logistic_mixture(params, 2, rng.uniform(size=20000).astype(np.float32),
                                                 rng.uniform(size=20000).astype(np.float32)))
    assert np.mean(samples < 0) == pytest.approx(0.3, abs=0.015)
    assert np.median(samples[samples > 0]) == pytest.approx(0.5, abs=0.005)


def test_mixture_sampler_temperature_sharpens_and_zero_takes_the_likeliest_mean():
    rng = np.random.default_rng(0)
    params = np.tile(np.array([np.log(0.3), np.log(0.7), -0.5, 0.5, np.log(0.05), np.log(0.05)], np.float32),
                     (20000, 1))
    uniforms = [rng.uniform(size=20000).astype(np.float32) for _ in range(2)]
    hot, cool = (np.asarray(sample_logistic_mixture(params, 2, *uniforms, temperature=t)) for t in (1.0, 0.5))
    assert np.mean(cool < 0) < np.mean(hot < 0)  # the weaker component is drawn less often
    assert np.std(cool[cool > 0]) == pytest.approx(0.5 * np.std(hot[hot > 0]), rel=0.05)  # half the spread
    cold = np.asarray(sample_logistic_mixture(params, 2, *uniforms, temperature=0.0))
    np.testing.assert_allclose(cold, 0.5)
    logits = np.log(np.array([[0.2, 0.5, 0.3]], np.float32))
    assert int(np.asarray(sample_mulaw(logits, np.array([0.01], np.float32), temperature=0.0))[0]) == 1


def test_mulaw_round_trip():
    x = np.linspace(-1, 1, 1001).astype(np.float32)
    decoded = np.asarray(mulaw_decode(mulaw_encode(x)))
    assert np.abs(decoded - x).max() < 0.035 and np.abs(decoded - x)[480:520].max() < 0.001
    assert mulaw_encode(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]


def test_conditioning_roll_frames_line_up_with_samples():
    notes = np.array([(0.1, 0.2, 60, 127), (0.2039, 0.3, 62, 64)], dtype=NOTE_DTYPE)
    roll = conditioning_roll(notes, 100, 250)
    key = 60 - 21
    # 0.1 s = sample 1600 = the first sample of frame 25; 0.2039 s = sample 3262, in frame 50.
    assert roll[:, key].nonzero()[0].tolist() == list(range(25, 50))
    assert roll[25, 88 + key] == 1.0 and roll[:, 88 + key].sum() == 1.0
    assert roll[50, 88 + 62 - 21] == pytest.approx(64 / 127) and roll[50, 62 - 21] == pytest.approx(64 / 127)
    # The upsampling gives samples [64 t, 64 (t + 1)) the conditioning of frame t.
    stack = ContextStack(4, (), 64)
    frames = np.zeros((1, 6, ROLL_CHANNELS), np.float32)
    base = np.asarray(stack(frames))
    frames[0, 3, 5] = 1.0
    changed = np.abs(np.asarray(stack(frames)) - base).max(axis=-1)[0]
    assert changed.nonzero()[0].min() == 192 and changed.nonzero()[0].max() == 255


def test_notes_snap_to_where_fluidsynth_starts_them(tmp_path):
    import pretty_midi

    from maestro.augmentation import Augmentation, render_midi
    from stages.io.midi import apply_sustain, notes_from_sequence, read_note_sequence
    from synthesize.conditioning import snap_to_render_grid

    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120.0)  # ticks of 1.04 ms, as in ASAP
    piano = pretty_midi.Instrument(program=0)
    onsets = 0.2 + 1.5 * np.arange(12) + np.linspace(0.0, 0.004, 12)  # every phase within a block
    piano.notes = [pretty_midi.Note(100, 79, t, t + 0.1) for t in onsets]
    midi.instruments.append(piano)
    midi.write(str(tmp_path / "n.mid"))
    notes = notes_from_sequence(apply_sustain(read_note_sequence(tmp_path / "n.mid")))
    audio = render_midi(tmp_path / "n.mid", Augmentation("TimGM6mb"), 16_000, np.random.default_rng(0))
    snapped = snap_to_render_grid(notes, 64, 16_000)
    for start in np.round(snapped["onset_s"] * 16_000).astype(int):
        assert start % 64 == 0
        assert np.abs(audio[start - 64: start + 1]).max() == 0.0  # silent up to the snapped onset ...
        assert np.abs(audio[start + 1: start + 64]).max() > 1e-3  # ... sounding right after it
    assert np.all(snapped["onset_s"] > notes["onset_s"])
    assert np.array_equal(snap_to_render_grid(notes, 0, 16_000), notes)


def test_linear_upsampling_puts_each_frame_at_its_centre_and_repeats_no_pattern():
    stack = ContextStack(3, (1,), 64, "linear")
    frames = np.array([[[0.0, 1.0, 5.0], [2.0, 1.0, 5.0], [4.0, 1.0, 5.0], [0.0, 1.0, 5.0]]], np.float32)  # 2 inner
    samples = np.asarray(stack._interpolate(frames))[0]
    assert samples.shape == (128, 3)
    np.testing.assert_allclose(samples[32], frames[0, 1], atol=1e-6)  # centre of the first inner frame
    np.testing.assert_allclose(samples[96], frames[0, 2], atol=1e-6)
    np.testing.assert_allclose(samples[0, 0], 1.0, atol=1e-6)  # half way from the margin frame's centre
    np.testing.assert_allclose(np.diff(samples[32:97, 0]), 2 / 64, atol=1e-6)  # a straight line between centres
    np.testing.assert_allclose(samples[:, 1:], np.broadcast_to([1.0, 5.0], (128, 2)))  # constant stays constant
    with pytest.raises(ValueError, match="dilations"):
        ContextStack(3, (), 64, "linear")


def test_transposed_upsampling_converts_to_its_mean_per_frame():
    import dataclasses

    transposed = build_model(dataclasses.replace(TINY, upsampling="transposed"))
    linear = build_model(TINY)
    transfer_weights(transposed, linear)
    inputs = random_inputs(6)
    old = np.asarray(transposed.condition(inputs["roll"], inputs["excitation"]))[0]
    new = np.asarray(linear.condition(inputs["roll"], inputs["excitation"]))[0]
    spf, roll_part = TINY.samples_per_frame, TINY.context_channels  # then the excitation, the same in both
    centres = new[spf // 2::spf, :roll_part]
    np.testing.assert_allclose(centres, old[:, :roll_part].reshape(6, spf, -1).mean(axis=1), atol=1e-5)
    np.testing.assert_array_equal(new[:, roll_part:], old[:, roll_part:])
    for a, b in zip(transposed.dilated + transposed.conditioning, linear.dilated + linear.conditioning):
        assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    with pytest.raises(ValueError, match="cannot"):
        transfer_weights(linear, transposed)


def test_transfer_between_audio_gains_keeps_the_predicted_distribution():
    import dataclasses

    keras.utils.set_random_seed(1)
    unity = build_model(dataclasses.replace(TINY, audio_gain=1.0))
    gained = build_model(TINY)
    transfer_weights(unity, gained)
    inputs = random_inputs(4)
    inputs["audio"] = inputs["audio"] * np.float32(0.03)  # as quiet as the renders
    before, after = np.asarray(unity(inputs)), np.asarray(gained(inputs))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    targets = inputs["audio"][:, 1:]
    np.testing.assert_allclose(float(logistic_mixture_nll(targets, after[:, 1:], TINY.mixtures)),
                               float(logistic_mixture_nll(targets, before[:, 1:], TINY.mixtures)), rtol=1e-4)


def test_dither_stays_on_the_16_bit_grid_and_lifts_digital_silence():
    noisy = dither(np.zeros(20_000, np.float32), 1.0, np.random.default_rng(0))
    steps = noisy * 32768
    np.testing.assert_array_equal(steps, np.round(steps))
    assert 0.9 < steps.std() < 1.2 and (steps == 0).mean() < 0.5  # silence no longer exactly predictable
    loud = np.full(1000, 0.5, np.float32)
    assert np.abs(dither(loud, 1.0, np.random.default_rng(0)) - loud).max() <= 5 / 32768


def test_harmonic_excitation_is_the_notes_pitch_from_its_onset_to_its_offset():
    # A4 (440 Hz) from 0.1 s to 0.6 s at velocity 127, and C8 (4186 Hz), whose 2nd harmonic is
    # above Nyquist at 16 kHz.
    notes = np.array([(0.1, 0.6, 69, 127), (0.7, 0.8, 108, 64)], dtype=NOTE_DTYPE)
    whole = harmonic_excitation(notes, 0, 16_000, 16_000, harmonics=2)
    assert whole.shape == (16_000, 4)
    assert np.abs(whole[:1600]).max() == 0.0 and np.abs(whole[9600:11200]).max() == 0.0  # silent outside notes
    assert whole[1600, 0] == 0.0 and whole[1600, 1] == pytest.approx(1.0)  # phase zero at the onset
    a4 = whole[1600:9600, 0]
    spectrum = np.abs(np.fft.rfft(a4))
    assert np.argmax(spectrum) * 16_000 / len(a4) == pytest.approx(440, abs=2)
    assert np.argmax(np.abs(np.fft.rfft(whole[1600:9600, 2]))) * 16_000 / len(a4) == pytest.approx(880, abs=2)
    assert np.abs(a4[-800:]).max() < np.abs(a4[:800]).max()  # it decays
    assert np.abs(whole[11200:12800, 0]).max() > 0.4 and np.abs(whole[11200:12800, 2:]).max() == 0.0
    # Any window is the same slice of the timeline: segments rendered apart keep their phases.
    np.testing.assert_array_equal(harmonic_excitation(notes, 3000, 5000, 16_000, 2), whole[3000:8000])
    np.testing.assert_array_equal(harmonic_excitation(notes, -500, 1000, 16_000, 2)[500:], whole[:500])


def test_segments_join_without_seams():
    total, segment, lead_in, crossfade = 1000, 256, 64, 32
    plan = segment_plan(total, segment, lead_in, crossfade)
    assert len({last - first for first, last in plan}) == 1 and plan[-1][1] >= total
    signal = np.sin(np.arange(-lead_in, total + segment + crossfade) * 0.05).astype(np.float32)
    segments = np.stack([signal[first + lead_in: last + lead_in] for first, last in plan])
    np.testing.assert_allclose(join_segments(segments, total, segment, lead_in, crossfade),
                               signal[lead_in: lead_in + total], atol=1e-6)


def test_loudness_reaches_its_level_without_clipping_and_keeps_the_dynamics():
    rng = np.random.default_rng(0)
    quiet = (rng.normal(0, 0.002, 16_000) * np.linspace(0.1, 1, 16_000)).astype(np.float32)
    louder = set_loudness(quiet, 2200.0)
    assert np.sqrt(np.mean(louder.astype(np.float64) ** 2)) * 32768 == pytest.approx(2200.0, rel=1e-4)
    np.testing.assert_allclose(louder / quiet, louder[0] / quiet[0], rtol=1e-4)  # one gain for the whole piece
    spiky = quiet.copy()
    spiky[100] = 0.2  # a level of 20,000 would push this sample past full scale: the gain stops at the peak
    assert np.abs(set_loudness(spiky, 20_000.0)).max() == pytest.approx(0.99)
    silence = np.zeros(100, np.float32)
    np.testing.assert_array_equal(set_loudness(silence, 2200.0), silence)
    np.testing.assert_array_equal(set_loudness(quiet, 0.0), quiet)  # 0: the level as sampled


def test_rendered_pieces_come_out_at_the_configured_level():
    import dataclasses

    from stages.io.midi import sequence_from_notes
    from synthesize.stage import Synthesizer

    keras.utils.set_random_seed(4)
    sequence = sequence_from_notes(np.array(phrase(5, 1.5), dtype=NOTE_DTYPE))
    model = build_model(dataclasses.replace(TINY, output_rms_lsb=500.0, sampling_temperature=0.0))
    audio = Synthesizer(model, segment_seconds=0.5).render(sequence)
    level = np.sqrt(np.mean(audio.astype(np.float64) ** 2)) * 32768
    assert level == pytest.approx(500.0, rel=1e-3) or np.abs(audio).max() == pytest.approx(0.99)


@pytest.mark.slow
def test_keras_save_and_load_round_trip(tmp_path):
    model = build_model(TINY)
    model.save(tmp_path / "w.keras")
    loaded = keras.saving.load_model(tmp_path / "w.keras")
    inputs = random_inputs(2, seed=3)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)), atol=1e-6)


@pytest.fixture(scope="module")
def trained_tiny(rendered, tmp_path_factory):
    from synthesize.train import train

    run = tmp_path_factory.mktemp("wavenet")
    train(rendered, run, TINY, steps=4, steps_per_epoch=2, validation_batches=2)
    return run


@pytest.mark.slow
def test_training_reports_the_loss_with_shuffled_rolls(trained_tiny):
    with open(trained_tiny / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert all(np.isfinite(float(r["val_loss"])) and np.isfinite(float(r["val_loss_shuffled_roll"])) for r in rows)
    assert (trained_tiny / "best.keras").exists()


@pytest.mark.slow
def test_training_can_start_from_a_trained_wavenet(trained_tiny, rendered, tmp_path):
    import dataclasses

    from synthesize.train import train

    frozen = dataclasses.replace(TINY, learning_rate=0.0)  # no update: the run keeps what it started from
    train(rendered, tmp_path / "run", frozen, steps=1, steps_per_epoch=1, validation_batches=1,
          initial_weights=trained_tiny / "best.keras")
    start = keras.saving.load_model(trained_tiny / "best.keras", compile=False).get_weights()
    after = keras.saving.load_model(tmp_path / "run" / "last.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(start, after))
    assert any(np.any(w != 0) for w in start)


@pytest.mark.slow
def test_training_saves_the_moving_average_of_the_weights(rendered, tmp_path):
    import dataclasses

    from synthesize.train import train

    averaging = dataclasses.replace(TINY, weight_average_momentum=0.5)
    train(rendered, tmp_path, averaging, steps=4, steps_per_epoch=2, validation_batches=2)
    with open(tmp_path / "history.csv") as handle:
        assert all(np.isfinite(float(r["val_loss_averaged"])) for r in csv.DictReader(handle))
    last = keras.saving.load_model(tmp_path / "last.keras")  # the trained weights, with the optimizer's averages
    averages = [keras.ops.convert_to_numpy(v) for v in last.optimizer._model_variables_moving_average]
    averaged = keras.saving.load_model(tmp_path / "averaged-epoch-2.keras", compile=False)
    for saved, average in zip(averaged.trainable_weights, averages):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), average)
    assert any(not np.array_equal(keras.ops.convert_to_numpy(w), a) for w, a in zip(last.trainable_weights, averages))
    assert (tmp_path / "averaged-epoch-1.keras").exists()


@pytest.mark.slow
def test_cli_renders_midi_to_wav_and_reports_bad_files(trained_tiny, tmp_path, capsys):
    from pipeline import main

    make_midi(tmp_path / "in" / "short.mid", phrase(4, 1.5))
    (tmp_path / "in" / "bad.midi").write_bytes(b"")
    argv = ["synthesize", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", str(trained_tiny / "last.keras"),
            "--level", "300"]
    assert main(argv) == 1
    assert "bad.midi: empty file" in capsys.readouterr().out
    audio, rate = soundfile.read(tmp_path / "out" / "short.wav")
    assert rate == 16000 and 1.5 < len(audio) / rate < 3.0 and np.isfinite(audio).all()
    level = np.sqrt(np.mean(audio ** 2)) * 32768
    assert level == pytest.approx(300, abs=2) or np.abs(audio).max() == pytest.approx(0.99, abs=1e-4)


@pytest.mark.slow
def test_input_noise_reaches_the_past_samples_only(rendered):
    import dataclasses

    recording = load_recordings(rendered, "train", TINY.sample_rate_hz)[0]
    noisy = dataclasses.replace(TINY, dither_lsb=0.0, input_noise_lsb=50.0)
    clean_inputs, clean_targets = crop_inputs(recording, 0, 4096, noisy, MARGIN)
    inputs, targets = crop_inputs(recording, 0, 4096, noisy, MARGIN, np.random.default_rng(0))
    np.testing.assert_array_equal(targets, clean_targets)
    assert 40 < (inputs["audio"] - clean_inputs["audio"]).std() * 32768 < 60
    np.testing.assert_array_equal(clean_inputs["audio"][1:], clean_targets[:-1])  # the past is the targets, shifted
