"""`w2m2w transcribe` with the options basic-pitch users reach for: thresholds, a minimum note
length, the MIDI tempo, the heads' probabilities, several inputs in one call; `w2m2w --version`."""

from __future__ import annotations

import shutil

import numpy as np
import pretty_midi
import pytest

from pipeline import main


@pytest.fixture
def tiny(checkpoints, tmp_path):
    """The tiny transcriber in a folder of its own (a rescorer may be put beside it)."""
    folder = tmp_path / "model"
    folder.mkdir()
    return shutil.copy(checkpoints / "transcriber.keras", folder / "tiny.keras")


def notes(path) -> list[pretty_midi.Note]:
    return [n for instrument in pretty_midi.PrettyMIDI(str(path)).instruments for n in instrument.notes]


@pytest.mark.slow
def test_several_inputs_thresholds_tempo_and_probabilities(recordings, tiny, tmp_path, capsys):
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(recordings / "piece0.wav", loose / "single.wav")
    out = tmp_path / "out"
    args = ["transcribe", str(recordings), str(loose / "single.wav"), str(out), "--checkpoint", str(tiny),
            "--onset-threshold", "0.3", "--frame-threshold", "0.3", "--midi-tempo", "90", "--save-probabilities"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".midi", ".npz")) == [
        "piece0.midi", "piece0.npz", "piece1.midi", "piece1.npz", "single.midi", "single.npz"]
    assert pretty_midi.PrettyMIDI(str(out / "single.midi")).get_tempo_changes()[1][0] == pytest.approx(90.0, abs=0.01)
    with np.load(out / "piece1.npz") as heads:
        fps = float(heads["frames_per_second"])
        assert {"onsets", "offsets", "frames", "velocities"} <= set(heads)
        assert heads["frames"].shape[1] == 88 and abs(len(heads["frames"]) / fps - 2.0) < 0.1
        assert heads["onsets"].dtype == np.float16
    # The thresholds reach the decoder: the untrained model's probabilities sit near 0.5.
    strict = tmp_path / "strict"
    status = main(["transcribe", str(loose), str(strict), "--checkpoint", str(tiny), "--onset-threshold", "0.99",
                   "--frame-threshold", "0.99"])
    if status == 1:  # no note at all: an empty MIDI file is no transcription, and none is written
        assert "no notes heard" in capsys.readouterr().out and not (strict / "single.midi").exists()
    assert len(notes(strict / "single.midi") if status == 0 else []) < len(notes(out / "single.midi"))
    # A minimum length drops the shorter notes, and only those.
    shortest = tmp_path / "shortest"
    assert main(["transcribe", str(loose), str(shortest), "--checkpoint", str(tiny), "--onset-threshold", "0.3",
                 "--frame-threshold", "0.3", "--min-note-ms", "100"]) == 0
    kept = notes(shortest / "single.midi")
    assert all(n.end - n.start >= 0.099 for n in kept)
    assert len(kept) == sum(n.end - n.start >= 0.099 for n in notes(out / "single.midi"))


@pytest.mark.slow
def test_inputs_that_would_write_the_same_file_are_refused(recordings, tiny, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(recordings / "piece0.wav", other / "piece0.wav")
    assert main(["transcribe", str(recordings), str(other), str(tmp_path / "out"), "--checkpoint", str(tiny)]) == 2
    assert "separate folders" in capsys.readouterr().err
    assert not (tmp_path / "out" / "piece0.midi").exists()


@pytest.mark.slow
def test_thresholds_the_rescorer_would_ignore_are_refused(recordings, tiny, tmp_path, capsys):
    tiny.with_suffix(".rescorer.keras").write_bytes(b"")  # only its presence is read before refusing
    out = str(tmp_path / "out")
    assert main(["transcribe", str(recordings), out, "--checkpoint", str(tiny), "--onset-threshold", "0.4"]) == 2
    assert "--no-rescorer" in capsys.readouterr().err
    assert main(["transcribe", str(recordings), out, "--checkpoint", str(tiny), "--frame-threshold", "0.4"]) == 2
    assert "--no-note-ends" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out.startswith("w2m2w ")
