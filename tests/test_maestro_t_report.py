"""The MAESTRO-T report (benchmarks/maestro_t.py): it refuses two runs that differ in more than the
MIDI they trained on, reads the 2 x 2 NLL table, pools statistics so that repeating the music
changes nothing, takes a statistic's shift apart by kind of error, and (slow) writes its record
and chart from two tiny runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks import maestro_t
from benchmarks.maestro_t_errors import attribution, pooled_statistics
from stages.io.midi import NOTE_DTYPE
from transcribe.errors import KINDS, note_errors


def evaluation(ground_truth: float, transcribed: float) -> dict:
    return {"split": "test", **{name: {"nll_per_event": nll, "nll_per_event_interval_95": [nll - 0.1, nll + 0.1],
                                       "pieces": 1, "events": 100, "chunk_tokens": 32}
                                for name, nll in (("ground_truth", ground_truth), ("transcribed", transcribed))}}


def run_record(trained_on: str, scores: dict) -> dict:
    return {"dataset": "data", "transcriber": {"sha256_16": "0123456789abcdef"},
            "corpus": {"transcription_accuracy": {"note/f1": 0.9}},
            "composer": {"trained_on": trained_on, "config": "tiny", "architecture": "relative", "steps": 2,
                         "seed": 0, "from": None}, "evaluation": scores}


def write_run(folder, record: dict):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "maestro-t.json").write_text(json.dumps(record))
    (folder / "evaluation.json").write_text(json.dumps(record["evaluation"]))
    return folder


def test_the_nll_table_and_the_gap_against_the_target():
    table = maestro_t.nll_table(run_record("transcribed", evaluation(3.04, 2.9)),
                                run_record("ground-truth", evaluation(3.0, 3.2)))
    assert table["trained_on_transcribed"]["scored_on_ground_truth"]["nll_per_event"] == 3.04
    assert table["trained_on_ground_truth"]["scored_on_transcribed"]["interval_95"] == pytest.approx([3.1, 3.3])
    assert table["gap_on_ground_truth"] == pytest.approx(0.04) and table["within_target"]
    assert not maestro_t.nll_table(run_record("transcribed", evaluation(3.06, 2.9)),
                                   run_record("ground-truth", evaluation(3.0, 3.2)))["within_target"]


@pytest.mark.parametrize("changes, named", [({"steps": 3}, "composer steps"), ({"seed": 1}, "composer seed"),
                                            ({"config": "default"}, "composer config"),
                                            ({"from": "other.keras"}, "composer from"),
                                            ({"trained_on": "transcribed"}, "the ground-truth run was trained on")])
def test_runs_that_differ_in_more_than_their_midi_are_refused(changes, named, tmp_path, capsys):
    transcribed = write_run(tmp_path / "t", run_record("transcribed", evaluation(3.0, 3.0)))
    changed = run_record("ground-truth", evaluation(3.0, 3.0))
    changed["composer"].update(changes)
    ground_truth = write_run(tmp_path / "gt", changed)
    with pytest.raises(SystemExit) as exit_info:
        maestro_t.main(["--dataset", str(tmp_path), "--transcribed-run", str(transcribed),
                        "--ground-truth-run", str(ground_truth)])
    assert exit_info.value.code == 2 and named in capsys.readouterr().err


def test_runs_scored_differently_are_refused():
    other = evaluation(3.0, 3.0)
    other["ground_truth"]["chunk_tokens"] = 64
    with pytest.raises(maestro_t.RunsDiffer, match="scored on ground-truth with another chunk_tokens"):
        maestro_t.check_runs(run_record("transcribed", evaluation(3.0, 3.0)), run_record("ground-truth", other))


def test_an_unfinished_run_is_named(tmp_path, capsys):
    transcribed = write_run(tmp_path / "t", run_record("transcribed", evaluation(3.0, 3.0)))
    with pytest.raises(SystemExit):
        maestro_t.main(["--dataset", str(tmp_path), "--transcribed-run", str(transcribed),
                        "--ground-truth-run", str(tmp_path / "missing")])
    assert "finished `w2m2w maestro-t` run" in capsys.readouterr().err


def phrase_notes(seed: int, seconds: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    onsets = np.sort(rng.uniform(0, seconds - 1, 60))
    return np.sort(np.array([(t, t + rng.uniform(0.1, 1.0), rng.integers(40, 90), rng.integers(30, 100))
                             for t in onsets], NOTE_DTYPE), order=["onset_s", "pitch"])


def test_music_repeated_has_the_same_statistics():
    piece = phrase_notes(0)
    once, twice = pooled_statistics([piece], [10.0]), pooled_statistics([piece, piece], [10.0, 10.0])
    assert once == pytest.approx(twice, rel=0.02)
    assert pooled_statistics([piece[:0]], [10.0]) is None


def test_a_shift_is_taken_apart_by_kind_of_error():
    reference = phrase_notes(1)
    estimate = reference[::2].copy()  # half the notes missed, the rest 8 louder
    estimate["velocity"] += 8
    figures = attribution([(reference, estimate, note_errors(reference, estimate))])
    density = figures["notes_per_second"]
    assert density["transcribed"] == pytest.approx(density["ground_truth"] / 2, rel=0.05)
    assert density["largest"] == "missed" and density["by_kind"]["missed"] == pytest.approx(density["shift"])
    assert figures["velocity_mean"]["largest"] == "velocity"
    assert set(density["by_kind"]) == set(KINDS)
    assert all(density["by_kind"][kind] == 0 for kind in ("restrike", "octave", "other", "onsets", "offsets"))


@pytest.mark.slow  # renders a tiny dataset, builds a tiny composer and samples from it
def test_the_report_of_two_tiny_runs(rendered, checkpoints, tmp_path, monkeypatch):
    from benchmarks import record
    from maestro.metadata import Dataset
    from stages.io.midi import apply_sustain, notes_from_sequence, read_note_sequence, sequence_from_notes, write_midi

    runs = {"transcribed": tmp_path / "run-t", "ground-truth": tmp_path / "run-gt"}
    corpus = runs["transcribed"] / "corpus"
    for path in rendered.glob("maestro-v*"):
        corpus.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, corpus / path.name)
    dataset = Dataset.open(rendered)
    train_notes = train_kept = 0
    for record_ in dataset.records:  # a "transcription": every other note missed, the rest 10 ms late
        played = notes_from_sequence(apply_sustain(read_note_sequence(dataset.midi_path(record_))))
        notes = played[::2].copy()
        notes["onset_s"] += 0.01
        if record_.split == "train":
            train_notes, train_kept = train_notes + len(played), train_kept + len(notes)
        target = corpus / record_.midi_filename
        target.parent.mkdir(parents=True, exist_ok=True)
        write_midi(sequence_from_notes(notes), target)
    for trained_on, folder in runs.items():
        (folder / "composer").mkdir(parents=True)
        shutil.copy(checkpoints / "composer.keras", folder / "composer" / "best.keras")
        write_run(folder, run_record(trained_on, evaluation(3.0, 3.3) if trained_on == "ground-truth"
                                     else evaluation(3.02, 3.1)))
    monkeypatch.setattr(record, "RESULTS", tmp_path / "results")
    assert maestro_t.main(["--dataset", str(rendered), "--transcribed-run", str(runs["transcribed"]),
                           "--ground-truth-run", str(runs["ground-truth"]), "--samples", "2", "--seconds", "2"]) == 0
    figures = json.loads((tmp_path / "results" / "maestro_t.json").read_text())["figures"]
    assert (tmp_path / "results" / "maestro_t.png").stat().st_size > 10_000
    assert figures["nll"]["gap_on_ground_truth"] == pytest.approx(0.02) and figures["nll"]["within_target"]
    errors = figures["train_errors"]
    assert errors["pieces"] == 2 and errors["missed_share"] == pytest.approx(1 - train_kept / train_notes)
    assert errors["ghost_share"] == 0 and errors["onset_error_median_abs_ms"] == pytest.approx(10, abs=3)
    assert figures["train_statistics"]["notes_per_second"]["largest"] == "missed"
    samples = figures["samples"]
    assert samples["pianists_test"]["notes_per_second"] > 0 and samples["test_stretches"] >= 1
    assert {"composer_trained_on_ground_truth", "composer_trained_on_transcribed"} <= set(samples)
