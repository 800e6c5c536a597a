"""Run folders (stages.training.runs): a rerun resumes only with the config the run was started with."""

from __future__ import annotations

import dataclasses
import json

import pytest

from stages.training.runs import prepare_run


@dataclasses.dataclass(frozen=True)
class Config:
    layers: int = 2
    learning_rate: float = 1e-3
    temperature: float = 1.0  # an inference setting added after some runs began


def test_a_rerun_with_the_same_config_is_accepted(tmp_path):
    prepare_run(tmp_path, Config())
    prepare_run(tmp_path, Config())
    assert json.loads((tmp_path / "config.json").read_text()) == dataclasses.asdict(Config())


def test_a_rerun_with_another_config_is_refused(tmp_path):
    prepare_run(tmp_path, Config())
    with pytest.raises(ValueError, match="another config"):
        prepare_run(tmp_path, Config(layers=3))


def test_a_field_added_since_the_run_began_does_not_stop_it_resuming(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"layers": 2, "learning_rate": 1e-3}))
    prepare_run(tmp_path, Config(temperature=0.05))
    assert json.loads((tmp_path / "config.json").read_text())["temperature"] == 0.05
    with pytest.raises(ValueError, match="another config"):
        prepare_run(tmp_path, Config(learning_rate=1e-4, temperature=0.05))


def test_a_field_the_code_no_longer_has_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"layers": 2, "learning_rate": 1e-3, "temperature": 1.0,
                                                      "dilations": [1, 2]}))
    with pytest.raises(ValueError, match="another config"):
        prepare_run(tmp_path, Config())


@pytest.mark.slow
def test_history_plot_has_a_panel_per_figure_with_validation_beside_training(tmp_path):
    import matplotlib.image

    from stages.io.plots import plot_history

    (tmp_path / "history.csv").write_text("epoch,loss,val_loss,val_note_f1\n0,0.5,0.6,0.2\n1,0.4,0.5,0.4\n2,0.3,,0.5\n")
    picture = plot_history(tmp_path / "history.csv", tmp_path / "history.png")
    pixels = matplotlib.image.imread(picture)
    height, width = pixels.shape[:2]
    assert width > 1.8 * height  # two panels (loss with val_loss; val_note_f1), not three
    assert width < 3 * height
