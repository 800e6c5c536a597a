"""Model cards are written from a checkpoint's JSON record: data licence, commands, figures."""

import json

import pytest

from stages.training.model_card import main, rendered_timbres, training_data, write_model_card


def tiny_record(tmp_path, **extra):
    checkpoints = tmp_path / "transcribe" / "checkpoints"
    checkpoints.mkdir(parents=True)
    record = {
        "checkpoint": "tiny.keras", "sha256_16": "0123456789abcdef", "config": "tiny", "parameters": 1234,
        "selected_on": "val_note_f1 (max)", "best_epoch": 2, "epochs_trained": 3,
        "validation": {"val_note_f1": 0.5},
        "trained_with": [
            "w2m2w maestro render ../shared/data/asap data/asap-maestro --soundfonts TimGM6mb  # plain renders",
            "w2m2w train transcribe data/asap-tfrecords runs/tiny --config tiny --steps 10",
        ],
        **extra,
    }
    path = checkpoints / "tiny.json"
    path.write_text(json.dumps(record))
    return path


def test_card_names_data_licence_commands_and_figures(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "accuracy.json").write_text(json.dumps({
        "benchmark": "accuracy", "command": "benchmarks/transcribe_accuracy.py", "date": "2026-12-05T00:00:00",
        "figures": {"checkpoint_sha256_16": "0123456789abcdef", "test": {"note/f1": 0.75, "note/precision": 0.8}}}))
    (results / "other.json").write_text(json.dumps({
        "figures": {"checkpoint_sha256_16": "ffffffffffffffff", "note/f1": 0.1}}))
    card = write_model_card(tiny_record(tmp_path), results=results)
    text = card.read_text()
    assert card == tmp_path / "transcribe" / "checkpoints" / "tiny.md"
    assert "Onsets and Frames" in text and "1,234" in text
    assert "ASAP" in text and "CC BY-NC-SA 4.0" in text
    assert "TimGM6mb" in text and "FluidR3_GM" not in text  # only the soundfont the command named
    assert "# plain renders\nw2m2w maestro render ../shared/data/asap data/asap-maestro --soundfonts TimGM6mb\n" in text
    assert "w2m2w train transcribe data/asap-tfrecords runs/tiny --config tiny --steps 10" in text
    assert "| val_note_f1 | 0.5 |" in text
    assert "| test/note/f1 | 0.75 |" in text and "precision" not in text.split("## Figures")[1]
    assert "accuracy.json" in text and "other.json" not in text


def test_recorded_training_data_wins_and_samples_are_credited(tmp_path):
    path = tiny_record(tmp_path, training_data=[{"name": "My recordings", "licence": "CC0-1.0"}])
    assert [source.licence for source in training_data(json.loads(path.read_text()))] == ["CC0-1.0"]
    record = {"trained_with": ["w2m2w maestro render MIDI OUT --soundfonts salamander"]}
    assert any(source.licence == "CC BY 3.0" for source in training_data(record))


def test_timbres_come_from_the_renders_when_the_dataset_is_here(tmp_path):
    dataset = tmp_path / "data" / "mine"
    dataset.mkdir(parents=True)
    (dataset / "renders.csv").write_text("audio_filename,soundfont,gain_db\n2018/a.wav,salamander,0\n"
                                         "2018/b.wav,TimGM6mb,0\n")
    lines = ["w2m2w maestro render ../shared/data/asap data/mine --split-csv s.csv --seed 7  # plain"]
    assert rendered_timbres(lines, root=tmp_path) == {"salamander", "TimGM6mb"}
    assert rendered_timbres(lines, root=tmp_path / "elsewhere") is None


def test_benchmark_figures_come_only_from_the_results_folder_named(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "accuracy.json").write_text(json.dumps({"figures": {"checkpoint_sha256_16": "0123456789abcdef",
                                                                    "note/f1": 0.75}}))
    path = tiny_record(tmp_path)
    assert "accuracy.json" not in write_model_card(path).read_text()  # as `w2m2w ship` writes it
    with pytest.raises(SystemExit):
        main([str(path)])
    assert "--results" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--results", str(tmp_path / "nosuch"), str(path)])
    assert "no such folder" in capsys.readouterr().err
    assert main(["--results", str(results), str(path)]) == 0
    assert "| note/f1 | 0.75 |" in path.with_suffix(".md").read_text()
