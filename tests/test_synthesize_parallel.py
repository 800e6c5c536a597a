"""The parallel (non-autoregressive) WaveNet generator, its STFT loss, the piano excitation, and
the realism measures of the quality benchmark."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from stages.io.midi import NOTE_DTYPE
from synthesize.config import SynthesizerConfig
from synthesize.excitation import harmonic_excitation
from synthesize.generate import ParallelGenerator
from synthesize.parallel import MultiResolutionSTFTLoss, build_parallel
from synthesize.realism import matched_level, two_sample_accuracy
from synthesize.wavenet import ROLL_CHANNELS
from tests.conftest import make_midi, phrase

TINY = SynthesizerConfig.tiny_parallel()
MARGIN = sum(TINY.context_dilations)
RATE = TINY.sample_rate_hz


def random_inputs(frames: int, batch: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    samples = frames * TINY.samples_per_frame
    return {"noise": rng.standard_normal((batch, samples)).astype(np.float32),
            "roll": rng.uniform(0, 1, (batch, frames + 2 * MARGIN, ROLL_CHANNELS)).astype(np.float32),
            "excitation": rng.uniform(-1, 1, (batch, samples, TINY.excitation_channels)).astype(np.float32)}


def notes(*rows):
    return np.array(list(rows), dtype=NOTE_DTYPE)


def test_generator_output_is_as_long_as_the_roll():
    model = build_parallel(TINY)
    for frames in (1, 7, 32):
        assert tuple(model(random_inputs(frames, batch=2)).shape) == (2, frames * TINY.samples_per_frame)


def test_generator_sees_the_future_within_its_receptive_field_only():
    keras.utils.set_random_seed(0)
    model = build_parallel(TINY)
    inputs = random_inputs(16)
    n = 400  # the conditioning reaches further (frames), so change the noise alone
    changed = {**inputs, "noise": inputs["noise"].copy()}
    changed["noise"][0, n] += 1.0
    difference = np.abs(np.asarray(model(changed)) - np.asarray(model(inputs)))[0]
    half = TINY.receptive_field // 2
    assert difference[n - half: n + half + 1].max() > 0  # non-causal: earlier outputs hear it too
    assert difference[n - half - 1] > 0 or difference[n - half] > 0
    assert difference[: n - half].max() == 0 and difference[n + half + 1:].max() == 0


def test_segmented_rendering_equals_one_pass_over_the_piece():
    keras.utils.set_random_seed(1)
    model = build_parallel(TINY)
    frames = 40
    roll = np.random.default_rng(2).uniform(0, 1, (frames, ROLL_CHANNELS)).astype(np.float32)
    piece = notes((0.01, 0.09, 60, 90), (0.05, 0.15, 67, 50))

    def excitation(first, length):
        return harmonic_excitation(piece, first, length, RATE, TINY.harmonics, TINY.excitation_decays, True, True)

    whole = ParallelGenerator(model, segment_samples=frames * 64 + 640, temperature=0.7).run(roll, excitation, seed=3)
    segmented = ParallelGenerator(model, segment_samples=5 * 64, batch_segments=3, temperature=0.7)
    pieces = segmented.run(roll, excitation, seed=3)
    assert whole.shape == pieces.shape == (frames * 64,)
    # The same noise: drawn for the whole timeline, scaled by the temperature.
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    silent = ParallelGenerator(model, temperature=0.0).run(roll, excitation, seed=3)
    assert not np.allclose(silent, whole)


@pytest.mark.slow
def test_keras_save_and_load_round_trip(tmp_path):
    model = build_parallel(TINY)
    inputs = random_inputs(6)
    path = tmp_path / "parallel.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert loaded.config == TINY
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)), atol=1e-6)


def test_stft_loss_is_zero_on_the_target_and_grows_with_the_difference():
    rng = np.random.default_rng(0)
    t = np.arange(4096) / RATE
    target = (0.1 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    loss = MultiResolutionSTFTLoss((256, 64))
    assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-5)
    near = target + 0.001 * rng.standard_normal(target.shape).astype(np.float32)
    far = target + 0.05 * rng.standard_normal(target.shape).astype(np.float32)
    assert 0 < float(loss(target, near)) < float(loss(target, far))
    # A phase shift alone costs (almost) nothing: the loss reads magnitudes.
    shifted = (0.1 * np.cos(2 * np.pi * 440 * t))[None].astype(np.float32)
    assert float(loss(target, shifted)) < 0.2 * float(loss(target, far))


def test_default_excitation_is_unchanged_and_the_piano_options_add_decays_release_and_stretch():
    piece = notes((0.0, 0.1, 45, 127))
    plain = harmonic_excitation(piece, 0, 3200, RATE, 3)
    assert plain.shape == (3200, 6) and np.all(plain[1600:] == 0)  # stops dead at the offset
    two = harmonic_excitation(piece, 0, 3200, RATE, 3, decays=(0.2, 1.0), release=True)
    assert two.shape == (3200, 12)
    np.testing.assert_allclose(two[:1600, 6:], plain[:1600], atol=1e-6)  # decay 1.0: the plain channels
    slow, fast = np.abs(two[1000:1600, 6:]).max(), np.abs(two[1000:1600, :6]).max()
    assert fast < slow  # the 0.2 decay fades sooner
    tail = np.abs(two[1600:, 6:])
    assert tail[:160].max() > tail[-160:].max() > 0  # fades out after the release
    stretched = harmonic_excitation(notes((0.0, 1.0, 96, 100)), 0, 16000, RATE, 3, stretched=True)
    spectrum = np.abs(np.fft.rfft(stretched[:, 4]))  # third partial's sine, 1 Hz bins
    third = 3 * 440.0 * 2 ** ((96 - 69) / 12)
    assert np.argmax(spectrum) > third + 5  # sharper than the harmonic


def test_classifier_cannot_tell_identical_audio_and_always_tells_a_sine_from_noise():
    rng = np.random.default_rng(0)
    t = np.arange(3 * RATE) / RATE
    sines = [0.1 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in (220, 330, 440, 550, 660, 770)]
    noises = [0.1 * rng.standard_normal(len(t)).astype(np.float32) for _ in range(6)]
    assert two_sample_accuracy(sines, sines, RATE) == pytest.approx(0.5)
    assert two_sample_accuracy(noises, sines, RATE) == pytest.approx(1.0)
    np.testing.assert_allclose(np.sqrt(np.mean(matched_level(noises[0], sines[0]) ** 2)), 0.1 / np.sqrt(2), rtol=1e-3)


@pytest.fixture(scope="module")
def trained_parallel(rendered, tmp_path_factory):
    from synthesize.train import train

    run = tmp_path_factory.mktemp("parallel")
    train(rendered, run, TINY, steps=4, steps_per_epoch=2, validation_batches=2)
    return run


@pytest.mark.slow
def test_training_resumes_and_reports_the_loss_with_shuffled_rolls(trained_parallel, rendered):
    from synthesize.train import train

    with open(trained_parallel / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert all(np.isfinite(float(r["val_loss"])) and np.isfinite(float(r["val_loss_shuffled_roll"])) for r in rows)
    train(rendered, trained_parallel, TINY, steps=6, steps_per_epoch=2, validation_batches=2)  # one epoch more
    with open(trained_parallel / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 3


@pytest.mark.slow
def test_stage_renders_midi_with_the_parallel_generator(trained_parallel, tmp_path):
    from synthesize.config import RenderSettings
    from synthesize.stage import SynthesizeStage

    make_midi(tmp_path / "in" / "a.mid", phrase(0, 1.0))
    stage = SynthesizeStage(trained_parallel / "last.keras", RenderSettings(temperature=0.5, output_rms_lsb=450))
    report = stage.run(tmp_path / "in", tmp_path / "out")
    assert report.ok
    import soundfile

    audio, rate = soundfile.read(tmp_path / "out" / "a.wav", dtype="float32")
    assert rate == RATE and len(audio) % TINY.samples_per_frame == 0
    assert np.sqrt(np.mean(audio ** 2)) == pytest.approx(450 / 32768, rel=0.05)


# Adversarial training (synthesize/adversarial.py).

ADVERSARIAL = dataclasses.replace(TINY, name="tiny_adversarial", discriminator_layers=3, discriminator_channels=4,
                                  discriminator_learning_rate=1e-2)


def test_discriminator_scores_each_sample_within_its_receptive_field():
    from synthesize.adversarial import Discriminator

    keras.utils.set_random_seed(2)
    discriminator = Discriminator(conv_layers=4, channels=4)
    audio = np.random.default_rng(2).standard_normal((1, 300)).astype(np.float32)
    changed = audio.copy()
    changed[0, 150] += 1.0
    difference = np.abs(np.asarray(discriminator(changed)) - np.asarray(discriminator(audio)))[0]
    half = discriminator.receptive_field // 2
    assert difference[150] > 0 and difference.shape == (300,)
    assert difference[: 150 - half].max() == 0 and difference[150 + half + 1:].max() == 0


def test_least_squares_losses_reward_telling_real_from_generated():
    from synthesize.adversarial import discriminator_loss, generator_adversarial_loss

    ones, zeros = np.ones((2, 8), np.float32), np.zeros((2, 8), np.float32)
    assert float(discriminator_loss(ones, zeros)) == 0.0  # a perfect discriminator
    assert float(discriminator_loss(zeros, ones)) == 2.0  # exactly wrong
    assert float(generator_adversarial_loss(ones)) == 0.0 and float(generator_adversarial_loss(zeros)) == 1.0


@pytest.mark.slow
def test_discriminator_learns_to_tell_a_fixed_generator_from_the_recording():
    """With the generator's learning rate 0 only the discriminator moves: on recorded sines
    against the untrained generator's noise, its loss must fall well below chance's 0.5."""
    from synthesize.adversarial import build_adversarial

    keras.utils.set_random_seed(3)
    config = dataclasses.replace(ADVERSARIAL, learning_rate=0.0)
    model = build_adversarial(config)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    before = [np.array(w) for w in model.generator.get_weights()]
    inputs = random_inputs(16, batch=4, seed=3)
    t = np.arange(inputs["noise"].shape[1]) / RATE
    audio = np.stack([0.05 * np.sin(2 * np.pi * f * t) for f in (220, 330, 440, 550)]).astype(np.float32)
    history = model.fit(inputs, audio, batch_size=4, epochs=60, verbose=0).history
    assert history["discriminator_loss"][-1] < 0.25 < history["discriminator_loss"][0]
    assert history["real_score"][-1] > history["fake_score"][-1] + 0.5
    for a, b in zip(before, model.generator.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_adversarial_run_resumes_and_keeps_a_generator_per_epoch(rendered, tmp_path):
    from synthesize.adversarial import AdversarialTraining
    from synthesize.parallel import ParallelWaveNet
    from synthesize.train import train

    train(rendered, tmp_path, ADVERSARIAL, steps=2, steps_per_epoch=2, validation_batches=2)
    first = keras.saving.load_model(tmp_path / "last.keras")
    assert isinstance(first, AdversarialTraining)
    assert int(first.discriminator_optimizer.iterations) == 2 and int(first.optimizer.iterations) == 2
    train(rendered, tmp_path, ADVERSARIAL, steps=4, steps_per_epoch=2, validation_batches=2)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(np.isfinite(float(r["discriminator_loss"])) for r in rows)
    assert int(keras.saving.load_model(tmp_path / "last.keras").discriminator_optimizer.iterations) == 4
    for name in ("best.keras", "generator-epoch-1.keras", "generator-epoch-2.keras"):
        assert isinstance(keras.saving.load_model(tmp_path / name, compile=False), ParallelWaveNet), name


def test_train_command_sets_the_adversarial_settings_only_for_the_adversarial_config():
    from pipeline import build_parser
    from stages.settings import from_namespace
    from synthesize.settings import SynthesizerTraining

    def config(*options):
        args = build_parser().parse_args(["train", "synthesize", "root", "run", *options])
        return from_namespace(SynthesizerTraining, args).training_config()

    chosen = config("--config", "adversarial", "--discriminator-learning-rate", "2e-4", "--adversarial-weight", "2",
                    "--learning-rate", "1e-4")
    assert (chosen.discriminator_layers, chosen.discriminator_learning_rate, chosen.adversarial_weight,
            chosen.learning_rate) == (10, 2e-4, 2.0, 1e-4)
    assert config("--config", "adversarial") == SynthesizerConfig.adversarial()
    assert config().discriminator_layers == 0 and config() == SynthesizerConfig.default()
    with pytest.raises(ValueError, match="--config adversarial"):
        config("--discriminator-learning-rate", "2e-4")


@pytest.mark.slow
def test_spectrogram_discriminator_learns_to_tell_a_fixed_generator_from_the_recording():
    from synthesize.adversarial import build_adversarial

    keras.utils.set_random_seed(4)
    config = dataclasses.replace(ADVERSARIAL, learning_rate=0.0, discriminator="spectrogram", discriminator_layers=2,
                                 discriminator_learning_rate=3e-3)
    model = build_adversarial(config)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    inputs = random_inputs(16, batch=4, seed=4)
    t = np.arange(inputs["noise"].shape[1]) / RATE
    audio = np.stack([0.05 * np.sin(2 * np.pi * f * t) for f in (220, 330, 440, 550)]).astype(np.float32)
    assert model.discriminator(audio).shape[0] == 4
    history = model.fit(inputs, audio, batch_size=4, epochs=40, verbose=0).history
    assert history["discriminator_loss"][-1] < 0.25 < history["discriminator_loss"][0]


# The same training under JAX (Keras's JAX trainer; how a lent accelerator trains the synthesizer).

REPO = Path(__file__).resolve().parents[1]


def under_jax(code: str) -> str:
    """`code` run by a Python with KERAS_BACKEND=jax; its standard output."""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "KERAS_BACKEND": "jax"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def adversarial_steps(folder: str) -> list[dict[str, float]]:
    """Three steps of FOLDER/start.keras on FOLDER/batch.npz under the Keras backend of the calling
    process; the weights after go to FOLDER/<backend>.npz. Returns each step's logs."""
    import synthesize.adversarial  # noqa: F401  (registers the classes)

    model = keras.saving.load_model(folder + "/start.keras")
    batch = dict(np.load(folder + "/batch.npz"))
    audio = batch.pop("audio")
    logs = [{k: float(v) for k, v in model.train_on_batch(batch, audio, return_dict=True).items()} for _ in range(3)]
    np.savez(folder + "/" + keras.backend.backend() + ".npz",
             *[np.asarray(w) for w in model.generator.get_weights() + model.discriminator.get_weights()])
    return logs


@pytest.mark.slow
def test_jax_adversarial_steps_compute_what_the_tensorflow_steps_do(tmp_path):
    """Three steps of both networks from the same weights on the same batch: the same losses and
    scores (the discriminator steps before the generator's adversarial loss under both), the same
    weights after."""
    from synthesize.adversarial import build_adversarial, compile_adversarial

    keras.utils.set_random_seed(5)
    compile_adversarial(build_adversarial(ADVERSARIAL)).save(tmp_path / "start.keras")
    inputs = random_inputs(16, batch=2, seed=5)
    t = np.arange(inputs["noise"].shape[1]) / RATE
    np.savez(tmp_path / "batch.npz", audio=np.stack([0.05 * np.sin(2 * np.pi * f * t) for f in (220, 330)]),
             **inputs)
    tensorflow_logs = adversarial_steps(str(tmp_path))  # this process runs TensorFlow: no second start-up
    jax_logs = json.loads(under_jax("import json\nfrom tests.test_synthesize_parallel import adversarial_steps\n"
                                    f"print(json.dumps(adversarial_steps({str(tmp_path)!r})))"))
    assert tensorflow_logs[-1]["discriminator_loss"] < tensorflow_logs[0]["discriminator_loss"]  # they did train
    for ours, theirs in zip(jax_logs, tensorflow_logs):
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-6)
    jax_weights, tensorflow_weights = np.load(tmp_path / "jax.npz"), np.load(tmp_path / "tensorflow.npz")
    for name in tensorflow_weights.files:
        np.testing.assert_allclose(jax_weights[name], tensorflow_weights[name], atol=1e-4)


@pytest.mark.slow
def test_an_adversarial_run_started_under_jax_resumes_under_tensorflow(rendered, tmp_path):
    from synthesize.train import train

    under_jax(f"""
from tests.test_synthesize_parallel import ADVERSARIAL
from synthesize.train import train
train({str(rendered)!r}, {str(tmp_path)!r}, ADVERSARIAL, steps=2, steps_per_epoch=2, validation_batches=2)
""")
    jax_run = keras.saving.load_model(tmp_path / "last.keras")
    assert int(jax_run.optimizer.iterations) == 2 and int(jax_run.discriminator_optimizer.iterations) == 2
    # The discriminator's Adam moments moved under JAX and were saved (not left at their zeros).
    assert max(float(np.abs(np.asarray(v)).max()) for v in jax_run.discriminator_optimizer.variables[2:]) > 0
    train(rendered, tmp_path, ADVERSARIAL, steps=4, steps_per_epoch=2, validation_batches=2)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(np.isfinite(float(r["val_loss"])) for r in rows)
    assert int(keras.saving.load_model(tmp_path / "last.keras").discriminator_optimizer.iterations) == 4
