"""scripts/average_weights.py: the mean of a run's saved models, as one model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from compose.config import ComposerConfig
from compose.model import build_model
from compose.tokens import VOCAB_SIZE

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "average_weights.py"
TINY = ComposerConfig.named("tiny", "relative")


def saved_model(path: Path, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_model(TINY)
    model.save(path)
    return model


def average(tmp_path, *inputs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "compose", str(tmp_path / "mean.keras"), *map(str, inputs)],
                          capture_output=True, text=True)


def test_the_mean_model_holds_the_mean_of_every_weight_and_predicts_like_it(tmp_path):
    a, b = saved_model(tmp_path / "a.keras", 1), saved_model(tmp_path / "b.keras", 2)
    assert average(tmp_path, tmp_path / "a.keras", tmp_path / "b.keras").returncode == 0
    mean = keras.saving.load_model(tmp_path / "mean.keras", compile=False)
    for wa, wb, wm in zip(a.get_weights(), b.get_weights(), mean.get_weights(), strict=True):
        np.testing.assert_allclose(wm, (wa + wb) / 2, rtol=1e-6, atol=1e-7)
    assert not np.allclose(a.get_weights()[0], b.get_weights()[0])  # else the test proves nothing

    # A model averaged with itself is itself: same logits.
    (tmp_path / "mean.keras").unlink()
    assert average(tmp_path, tmp_path / "a.keras", tmp_path / "a.keras").returncode == 0
    tokens = np.random.default_rng(0).integers(1, VOCAB_SIZE, (2, TINY.sequence_length)).astype(np.int32)
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "mean.keras", compile=False).predict_on_batch(tokens),
                               a.predict_on_batch(tokens), rtol=1e-5, atol=1e-5)


def test_it_refuses_to_overwrite_and_to_mix_configs(tmp_path):
    saved_model(tmp_path / "a.keras", 1)
    (tmp_path / "mean.keras").write_bytes(b"keep me")
    refused = average(tmp_path, tmp_path / "a.keras")
    assert refused.returncode != 0 and "not overwriting" in refused.stderr
    assert (tmp_path / "mean.keras").read_bytes() == b"keep me"

    (tmp_path / "mean.keras").unlink()
    build_model(ComposerConfig.named("tiny", "absolute")).save(tmp_path / "other.keras")
    mixed = average(tmp_path, tmp_path / "a.keras", tmp_path / "other.keras")
    assert mixed.returncode != 0 and not (tmp_path / "mean.keras").exists()
