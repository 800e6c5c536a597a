"""One trainer per model, reachable from `w2m2w`: `train rescorer`, `tune transcribe` and `ship`, on
tiny models and the tiny rendered dataset."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from pipeline import main

pytestmark = pytest.mark.slow  # training, tuning and shipping runs on a rendered dataset


@pytest.fixture
def tiny(checkpoints, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    return shutil.copy(checkpoints / "transcriber.keras", folder / "tiny.keras")


def test_train_rescorer_writes_it_beside_the_checkpoint_where_the_transcriber_finds_it(rendered, tiny, tmp_path,
                                                                                          capsys):
    from transcribe import Transcriber

    args = ["train", "rescorer", str(rendered), str(rendered), "--checkpoint", str(tiny), "--epochs", "1",
            "--cache", str(tmp_path / "cache"), "--apply"]
    assert main(args) == 0
    record = json.loads(tiny.with_suffix(".rescorer.json").read_text())
    assert json.dumps(record, indent=2) in capsys.readouterr().out
    assert record["command"].startswith("w2m2w train rescorer ") and record["training_recordings"] == 2
    assert record["accept_threshold"] in (0.3, 0.4, 0.5, 0.6, 0.7)
    assert Transcriber.load(tiny).rescorer is not None
    assert any((tmp_path / "cache").rglob("*.npz"))  # the predictions, for reruns


def test_tune_transcribe_writes_the_chosen_thresholds_into_the_checkpoint(rendered, tiny, capsys):
    from transcribe import Transcriber

    before = Transcriber.load(tiny)
    assert main(["tune", "transcribe", str(rendered), "--checkpoint", str(tiny), "--pieces", "1", "--seconds", "2",
                 "--apply"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    after = Transcriber.load(tiny)
    assert (after.config.onset_threshold, after.config.frame_threshold) == (chosen["onset_threshold"],
                                                                           chosen["frame_threshold"])
    for old, new in zip(before.model.get_weights(), after.model.get_weights()):
        np.testing.assert_array_equal(old, new)
    record = json.loads(tiny.with_suffix(".json").read_text())
    assert record["thresholds_chosen_on"]["pieces"] == 1
    assert record["trained_with"][-1].startswith("w2m2w tune transcribe ")


def test_ship_saves_the_best_epoch_with_its_record_and_model_card(tmp_path, checkpoints, capsys):
    run = tmp_path / "run"
    run.mkdir()
    best = keras.saving.load_model(checkpoints / "transcriber.keras", compile=False)
    best.save(run / "best.keras")
    (run / "history.csv").write_text("epoch,loss,val_loss,val_note_f1\n0,0.9,0.8,0.50\n1,0.7,0.6,0.70\n"
                                     "2,0.6,0.65,0.65\n")
    shipped = tmp_path / "shipped"
    assert main(["ship", "transcribe", str(run), "--checkpoints", str(shipped), "--name", "mine",
                 "--trained-with", "w2m2w train transcribe data runs/mine"]) == 0
    record = json.loads((shipped / "mine.json").read_text())
    assert record["best_epoch"] == 2 and record["validation"] == {"val_loss": 0.6, "val_note_f1": 0.7}
    assert record["trained_with"][0] == "w2m2w train transcribe data runs/mine"
    assert record["trained_with"][1].startswith("w2m2w ship transcribe ")
    assert (shipped / "mine.md").is_file()
    model = keras.saving.load_model(shipped / "mine.keras", compile=False)
    for old, new in zip(best.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert main(["ship", "transcribe", str(run), "--checkpoints", str(shipped),
                 "--model", str(run / "best.keras")]) == 2
    assert "epoch" in capsys.readouterr().err


def test_ship_selects_a_labels_only_composer_run_on_its_labelled_validation(tmp_path, checkpoints):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(checkpoints / "composer.keras", run / "best.keras")  # the session's tiny one
    (run / "history.csv").write_text("epoch,loss,val_nll_per_event_labelled\n0,2.1,2.30\n1,2.0,2.20\n2,2.0,2.25\n")
    assert main(["ship", "compose", str(run), "--checkpoints", str(tmp_path / "shipped")]) == 0
    record = json.loads((tmp_path / "shipped" / "default.json").read_text())
    assert record["best_epoch"] == 2 and record["selected_on"] == "val_nll_per_event_labelled (min)"
    assert record["validation"] == {"val_nll_per_event_labelled": 2.2}
