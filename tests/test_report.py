"""`w2m2w benchmark`: report files produced and parseable, two estimate folders side by side,
scores from the transcriber's own metric code."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from stages.io.midi import NOTE_DTYPE, sequence_from_notes, write_midi
from tests.conftest import make_midi, phrase


@pytest.fixture
def folders(tmp_path):
    reference, perfect, shifted = tmp_path / "ref", tmp_path / "perfect", tmp_path / "shifted"
    for i, name in enumerate(["a/one", "a/two", "three"]):
        make_midi(reference / f"{name}.mid", phrase(i, 6.0))
    shutil.copytree(reference, perfect)
    for path in reference.rglob("*.mid"):  # every onset 80 ms late: no note matches
        from stages.io.midi import notes_from_sequence, read_note_sequence

        notes = notes_from_sequence(read_note_sequence(path))
        moved = np.array([(n["onset_s"] + 0.08, n["offset_s"] + 0.08, n["pitch"], n["velocity"]) for n in notes],
                         dtype=NOTE_DTYPE)
        target = shifted / path.relative_to(reference).with_suffix(".midi")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_midi(sequence_from_notes(moved), target)
    (perfect / "three.mid").unlink()  # one estimate missing
    return reference, perfect, shifted


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_basic_pitch_folder_scored_next_to_ours_in_one_report(folders, tmp_path, capsys):
    from pipeline import main

    reference, ours, _ = folders
    basic_pitch, magenta = tmp_path / "bp", tmp_path / "magenta"
    basic_pitch.mkdir(), magenta.mkdir()
    for path in reference.rglob("*.mid"):  # flat folders, as the tools write them
        shutil.copy(path, basic_pitch / f"{path.stem}_basic_pitch.mid")
        shutil.copy(path, magenta / f"{path.stem}.wav.midi")
    out = tmp_path / "report"
    assert main(["benchmark", str(reference), f"ours={ours}", f"basic-pitch={basic_pitch}", f"magenta={magenta}",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["systems"]) == ["ours", "basic-pitch", "magenta"]
    for name in ("basic-pitch", "magenta"):
        assert report["systems"][name]["missing"] == []
        assert report["systems"][name]["mean"]["note/f1"] == pytest.approx(1.0)
    assert report["systems"]["ours"]["missing"] == ["three"]
    page = (out / "report.html").read_text()
    assert "<td>basic-pitch</td>" in page and "<td>ours</td>" in page
    # One naming pattern only: the other tool's files are not taken for estimates, and a folder
    # with no estimate named after a reference is an error, not an empty report (issue 62).
    assert main(["benchmark", str(reference), f"bp={basic_pitch}", "--estimate-naming", "magenta",
                 "--out", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "none").exists()


def test_labels_must_be_unique(folders, tmp_path, capsys):
    from pipeline import main

    reference, perfect, shifted = folders
    assert main(["benchmark", str(reference), f"x={perfect}", f"x={shifted}", "--out", str(tmp_path / "r")]) == 2
    assert "label 'x'" in capsys.readouterr().err
    renamed = tmp_path / "other" / perfect.name
    shutil.copytree(perfect, renamed)
    assert main(["benchmark", str(reference), str(perfect), str(renamed), "--out", str(tmp_path / "r")]) == 2
    assert "NAME=DIR" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_estimates_pedal_is_applied_unless_told_and_one_piece_has_no_best_or_worst(tmp_path):
    from transcribe.report import find_references, score, write_report

    notes = [(0.1, 0.3, 60, 80), (0.5, 0.7, 64, 80)]
    make_midi(tmp_path / "ref" / "a.mid", [(0.1, 1.0, 60, 80), (0.5, 1.0, 64, 80)])
    make_midi(tmp_path / "est" / "a.mid", notes, pedal=[(0.2, 100), (1.0, 0)])  # keys up, pedal down
    references = find_references(tmp_path / "ref")
    offsets = {sustain: score(references, {"est": tmp_path / "est"}, sustain=sustain)["systems"]["est"]
               for sustain in ("auto", "off")}
    assert offsets["auto"]["mean"]["note-with-offset/f1"] == pytest.approx(1.0)
    assert offsets["auto"]["estimates_with_pedal_applied"] == 1
    assert offsets["off"]["mean"]["note-with-offset/f1"] == pytest.approx(0.0)
    result = score(references, {"est": tmp_path / "est"})
    write_report(result, references, tmp_path / "out", title="Round trip: MIDI -> audio -> MIDI",
                 intro="the composed MIDI against the transcriptions of its renders")
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<h1>Round trip: MIDI -&gt; audio -&gt; MIDI</h1>" in page
    assert page.count("data:image/png;base64,") == 1 + 1 and "best" not in page and "worst" not in page
    assert json.loads((tmp_path / "out" / "report.json").read_text())["title"].startswith("Round trip")
