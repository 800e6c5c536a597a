"""compose.growth.widen (`w2m2w compose-tools widen`): a Music Transformer twice as wide that
starts out computing what the trained one did, in a full pass and in cached decoding, and whose
duplicated units grow apart."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from compose.config import ComposerConfig
from compose.growth import read_split, widen
from compose.model import build_model, compile_model
from compose.vocabulary import VOCAB_SIZE
from pipeline import main

# Tiny, with an attention span shorter than the sequence, as the shipped default has.
NARROW = dataclasses.replace(ComposerConfig.tiny(), attention_span=16)


def tokens(seed: int, batch: int = 2, length: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCAB_SIZE, (batch, length)).astype(np.int32)


def trained_a_little(config: ComposerConfig, seed: int) -> keras.Model:
    """Random weights in every layer, biases and norms included (fresh ones are zeros and ones,
    which would hide a bias or norm widened wrongly)."""
    keras.utils.set_random_seed(seed)
    model = build_model(config)
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def test_a_weight_split_between_two_copies_sums_to_the_weight():
    weights = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    split = read_split(weights, np.random.default_rng(1))
    assert split.shape == (6, 5)
    np.testing.assert_allclose(split[:3] + split[3:], weights, rtol=1e-6)
    assert not np.allclose(split[:3], split[3:])  # uneven: the copies take different gradients


@pytest.mark.slow
def test_the_wide_model_predicts_what_the_narrow_one_did():
    narrow = trained_a_little(NARROW, 0)
    wide = widen(narrow, seed=1)
    assert (wide.config.model_dim, wide.config.ff_dim) == (2 * NARROW.model_dim, 2 * NARROW.ff_dim)
    assert wide.config.num_heads == NARROW.num_heads and wide.config.attention_span == NARROW.attention_span
    assert wide.count_params() > 2.5 * narrow.count_params()
    x = tokens(0)
    np.testing.assert_allclose(wide.predict_on_batch(x), narrow.predict_on_batch(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_cached_decoding_of_the_wide_model_matches_the_narrow_one():
    narrow = trained_a_little(NARROW, 2)
    wide = widen(narrow, seed=3)
    x = tokens(4, batch=1, length=24)
    for model in (narrow, wide):
        model.outputs_by_step = []
        cache = model.empty_cache(1, NARROW.attention_span)
        for position in range(x.shape[1]):
            logits, cache = model.step(x[:, position:position + 1], cache, position)
            model.outputs_by_step.append(np.asarray(logits))
    np.testing.assert_allclose(np.stack(wide.outputs_by_step), np.stack(narrow.outputs_by_step), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_the_duplicated_units_grow_apart_in_training():
    wide = widen(trained_a_little(NARROW, 5), seed=6)
    half = NARROW.model_dim
    embedding = lambda: keras.ops.convert_to_numpy(wide.embedding.embeddings)  # noqa: E731
    np.testing.assert_array_equal(embedding()[:, :half], embedding()[:, half:])
    compile_model(wide)
    batch = tokens(7, batch=4, length=NARROW.sequence_length + 1)
    for _ in range(3):  # the warm-up's first step has a learning rate of zero
        wide.train_on_batch(batch[:, :-1], batch[:, 1:])
    moved_apart = np.abs(embedding()[:, :half] - embedding()[:, half:]).max()
    assert moved_apart > 1e-4


@pytest.mark.parametrize("architecture", ["absolute", "lstm"])
def test_only_the_relative_transformer_widens(architecture):
    with pytest.raises(ValueError, match="only the relative Music Transformer"):
        widen(build_model(ComposerConfig.named("tiny", architecture)))


@pytest.mark.slow
def test_the_command_writes_a_loadable_model_and_refuses_to_overwrite(tmp_path, capsys):
    narrow = trained_a_little(NARROW, 8)
    narrow.save(tmp_path / "narrow.keras")
    run = ["compose-tools", "widen", str(tmp_path / "narrow.keras"), str(tmp_path / "wide.keras")]
    assert main(run) == 0
    wide = keras.saving.load_model(tmp_path / "wide.keras", compile=False)
    x = tokens(9)
    np.testing.assert_allclose(wide.predict_on_batch(x), narrow.predict_on_batch(x), rtol=1e-4, atol=1e-4)

    before = (tmp_path / "wide.keras").read_bytes()
    capsys.readouterr()
    assert main(run) == 2 and "not overwriting" in capsys.readouterr().err
    assert (tmp_path / "wide.keras").read_bytes() == before


@pytest.mark.slow
def test_per_head_relative_embeddings_widen_too():
    narrow = trained_a_little(dataclasses.replace(NARROW, relative_per_head=True), 10)
    wide = widen(narrow, seed=11)
    x = tokens(12)
    np.testing.assert_allclose(wide.predict_on_batch(x), narrow.predict_on_batch(x), rtol=1e-4, atol=1e-4)
