"""compose.growth.grow (`w2m2w compose-tools grow`): a deeper Music Transformer that starts out
computing what the trained one did, and whose new blocks do learn."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from compose.config import ComposerConfig
from compose.growth import grow, source_blocks
from compose.model import build_model, compile_model
from compose.tokens import VOCAB_SIZE
from pipeline import main

TINY = ComposerConfig.tiny()


def tokens(seed: int, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, VOCAB_SIZE, (batch, TINY.sequence_length + 1)).astype(np.int32)


def test_new_blocks_are_spread_evenly_and_every_old_block_is_kept_in_order():
    assert source_blocks(4, 6) == [(0, False), (1, False), (1, True), (2, False), (2, True), (3, False)]
    for old, new in [(2, 3), (4, 5), (4, 8), (3, 7), (4, 4)]:
        plan = source_blocks(old, new)
        assert len(plan) == new and sum(is_copy for _, is_copy in plan) == new - old
        assert [source for source, is_copy in plan if not is_copy] == list(range(old))
        assert [source for source, _ in plan] == sorted(source for source, _ in plan)


@pytest.mark.slow
def test_the_grown_model_predicts_what_the_small_one_did_and_its_new_blocks_learn():
    keras.utils.set_random_seed(3)
    small = build_model(TINY)
    grown = grow(small, 5)
    assert grown.config.num_layers == 5 and len(grown.blocks) == 5
    x = tokens(0)[:, :-1]
    np.testing.assert_allclose(grown.predict_on_batch(x), small.predict_on_batch(x), rtol=1e-5, atol=1e-5)

    # The copies' residual outputs start at zero but take gradient: training moves them (two
    # steps, as the warm-up's first has a learning rate of zero).
    new_block = grown.blocks[source_blocks(2, 5).index((0, True))]
    assert not np.any(np.asarray(new_block.ff_out.kernel))
    batch = tokens(1, batch=4)
    compile_model(grown)
    for _ in range(2):
        grown.train_on_batch(batch[:, :-1], batch[:, 1:])
    assert np.any(np.asarray(new_block.ff_out.kernel)) and np.any(np.asarray(new_block.attention.out.kernel))


@pytest.mark.slow
def test_the_command_writes_a_loadable_model_and_refuses_to_overwrite(tmp_path, capsys):
    keras.utils.set_random_seed(4)
    small = build_model(TINY)
    small.save(tmp_path / "small.keras")
    run = ["compose-tools", "grow", str(tmp_path / "small.keras"), str(tmp_path / "grown.keras"), "--layers", "3"]
    assert main(run) == 0
    grown = keras.saving.load_model(tmp_path / "grown.keras", compile=False)
    assert grown.config.num_layers == 3
    x = tokens(2)[:, :-1]
    np.testing.assert_allclose(grown.predict_on_batch(x), small.predict_on_batch(x), rtol=1e-5, atol=1e-5)

    before = (tmp_path / "grown.keras").read_bytes()
    capsys.readouterr()
    assert main(run) == 2 and "not overwriting" in capsys.readouterr().err
    assert (tmp_path / "grown.keras").read_bytes() == before
    assert main(run[:3] + [str(tmp_path / "shallow.keras"), "--layers", "1"]) == 2
    assert "only adds blocks" in capsys.readouterr().err and not (tmp_path / "shallow.keras").exists()


@pytest.mark.slow
def test_training_goes_on_from_a_grown_model_with_the_runs_own_settings(tmp_path):
    from tests.conftest import make_midi, phrase

    keras.utils.set_random_seed(5)
    grow(build_model(TINY), 3).save(tmp_path / "grown.keras")
    for i in range(4):
        make_midi(tmp_path / "midi" / f"{i}.mid", phrase(i, 12.0))
    run = tmp_path / "run"
    assert main(["train", "compose", str(tmp_path / "midi"), str(run), "--config", "tiny", "--steps", "2",
                 "--steps-per-epoch", "2", "--learning-rate", "0.002", "--from", str(tmp_path / "grown.keras")]) == 0
    trained = keras.saving.load_model(run / "last.keras", compile=False)
    assert trained.config.num_layers == 3  # the grown model's shape, not the tiny config's 2 blocks
    assert trained.config.learning_rate == 0.002 and trained.config.decay_steps == 2
