"""compose.weights (`w2m2w compose-tools average`, `compact`): the mean of saved composers as one
model, and composers stored in float16."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from compose.config import ComposerConfig
from compose.model import build_model
from compose.tokens import VOCAB_SIZE
from pipeline import main

pytestmark = pytest.mark.slow  # builds, saves and reloads models, 5-15 s each

TINY = ComposerConfig.named("tiny", "relative")


def saved_model(path, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_model(TINY)
    model.save(path)
    return model


def average(tmp_path, *inputs) -> int:
    return main(["compose-tools", "average", str(tmp_path / "mean.keras"), *map(str, inputs)])


def test_the_mean_model_holds_the_mean_of_every_weight_and_predicts_like_it(tmp_path):
    a, b = saved_model(tmp_path / "a.keras", 1), saved_model(tmp_path / "b.keras", 2)
    assert average(tmp_path, tmp_path / "a.keras", tmp_path / "b.keras") == 0
    mean = keras.saving.load_model(tmp_path / "mean.keras", compile=False)
    for wa, wb, wm in zip(a.get_weights(), b.get_weights(), mean.get_weights(), strict=True):
        np.testing.assert_allclose(wm, (wa + wb) / 2, rtol=1e-6, atol=1e-7)
    assert not np.allclose(a.get_weights()[0], b.get_weights()[0])  # else the test proves nothing

    # A model averaged with itself is itself: same logits.
    (tmp_path / "mean.keras").unlink()
    assert average(tmp_path, tmp_path / "a.keras", tmp_path / "a.keras") == 0
    tokens = np.random.default_rng(0).integers(1, VOCAB_SIZE, (2, TINY.sequence_length)).astype(np.int32)
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "mean.keras", compile=False).predict_on_batch(tokens),
                               a.predict_on_batch(tokens), rtol=1e-5, atol=1e-5)


def test_it_refuses_to_overwrite_and_to_mix_configs(tmp_path, capsys):
    saved_model(tmp_path / "a.keras", 1)
    (tmp_path / "mean.keras").write_bytes(b"keep me")
    assert average(tmp_path, tmp_path / "a.keras") == 2 and "not overwriting" in capsys.readouterr().err
    assert (tmp_path / "mean.keras").read_bytes() == b"keep me"

    (tmp_path / "mean.keras").unlink()
    build_model(ComposerConfig.named("tiny", "absolute")).save(tmp_path / "other.keras")
    assert average(tmp_path, tmp_path / "a.keras", tmp_path / "other.keras") == 2
    assert not (tmp_path / "mean.keras").exists()


def test_a_float16_copy_is_half_the_size_and_loads_as_float32_with_the_same_predictions(tmp_path):
    import dataclasses

    keras.utils.set_random_seed(3)
    model = build_model(dataclasses.replace(ComposerConfig.default(), num_layers=2))  # big enough to see the size
    model.save(tmp_path / "a.keras")
    assert main(["compose-tools", "compact", str(tmp_path / "a.keras"), str(tmp_path / "small.keras")]) == 0
    small = keras.saving.load_model(tmp_path / "small.keras", compile=False)
    assert all(w.dtype == np.float32 for w in small.get_weights())  # float32 again once loaded
    for original, stored in zip(model.get_weights(), small.get_weights(), strict=True):
        np.testing.assert_allclose(stored, original, rtol=1e-3, atol=1e-7)  # float16's precision
    assert not np.array_equal(small.get_weights()[0], model.get_weights()[0])
    tokens = np.random.default_rng(1).integers(1, VOCAB_SIZE, (1, 32)).astype(np.int32)
    np.testing.assert_allclose(small.predict_on_batch(tokens), model.predict_on_batch(tokens), atol=2e-2)
    assert (tmp_path / "small.keras").stat().st_size < 0.6 * (tmp_path / "a.keras").stat().st_size
