"""`w2m2w benchmark`: report files produced and parseable, two estimate folders side by side,
scores from the transcriber's own metric code."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from stages.midi import NOTE_DTYPE, sequence_from_notes, write_midi
from tests.conftest import make_midi, phrase


@pytest.fixture
def folders(tmp_path):
    reference, perfect, shifted = tmp_path / "ref", tmp_path / "perfect", tmp_path / "shifted"
    for i, name in enumerate(["a/one", "a/two", "three"]):
        make_midi(reference / f"{name}.mid", phrase(i, 6.0))
    shutil.copytree(reference, perfect)
    for path in reference.rglob("*.mid"):  # every onset 80 ms late: no note matches
        from stages.midi import notes_from_sequence, read_note_sequence

        notes = notes_from_sequence(read_note_sequence(path))
        moved = np.array([(n["onset_s"] + 0.08, n["offset_s"] + 0.08, n["pitch"], n["velocity"]) for n in notes],
                         dtype=NOTE_DTYPE)
        target = shifted / path.relative_to(reference).with_suffix(".midi")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_midi(sequence_from_notes(moved), target)
    (perfect / "three.mid").unlink()  # one estimate missing
    return reference, perfect, shifted


def test_two_estimate_folders_side_by_side(folders, tmp_path, capsys):
    from pipeline import main

    reference, perfect, shifted = folders
    assert main(["benchmark", str(reference), str(perfect), str(shifted), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["references"] == 3
    assert report["systems"]["perfect"]["missing"] == ["three"]
    assert report["systems"]["perfect"]["mean"]["note/f1"] == pytest.approx(1.0)
    assert report["systems"]["shifted"]["mean"]["note/f1"] == pytest.approx(0.0)
    assert 0.0 < report["systems"]["shifted"]["mean"]["frame/f1"] < 1.0
    with open(tmp_path / "report" / "pieces.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted({r["system"] for r in rows}) == ["perfect", "shifted"] and len(rows) == 5
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 + 4  # distributions + best and worst of each
    assert "perfect" in page and "shifted" in page


def test_maestro_root_references_are_cut_to_the_audio_and_grouped(rendered, tmp_path):
    from transcribe.report import find_references, reference_notes, score, write_report

    references = find_references(rendered)
    assert {r.composer for r in references} == {"Frédéric Chopin", "Johann Sebastian Bach", "Franz Liszt"}
    estimates = tmp_path / "est"
    for reference in references:  # perfect transcriptions (pedal in the notes), named after the audio
        target = estimates / f"{reference.key}.midi"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_midi(sequence_from_notes(reference_notes(reference)), target)
    result = score(references, [estimates])
    assert result["systems"]["est"]["mean"]["note-with-offset-and-velocity/f1"] == pytest.approx(1.0)
    write_report(result, references, tmp_path / "out")
    assert "Note F1 by composer" in (tmp_path / "out" / "report.html").read_text()
