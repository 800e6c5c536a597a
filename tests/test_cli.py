"""The `w2m2w` command line: help, render and preprocess end to end, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import main
from tests.conftest import make_midi, phrase

REPO = Path(__file__).resolve().parents[1]


def test_help_explains_every_command():
    result = subprocess.run([sys.executable, str(REPO / "pipeline.py"), "maestro", "render", "--help"],
                            capture_output=True, text=True, check=True)
    text = " ".join(result.stdout.split())
    assert "MAESTRO-v3 layout" in text and "--split-csv" in text
    with pytest.raises(SystemExit) as exit_info:
        main(["maestro", "preprocess", "--help"])
    assert exit_info.value.code == 0


@pytest.mark.slow
def test_render_then_preprocess_with_beam_options_passed_through(tmp_path, capsys):
    make_midi(tmp_path / "in" / "piece.mid", phrase(11, 3.0))
    (tmp_path / "in" / "broken.mid").write_bytes(b"not midi")
    assert main(["maestro", "render", str(tmp_path / "in"), str(tmp_path / "ds"), "--workers", "1"]) == 1
    assert "broken.mid" in capsys.readouterr().out
    status = main(["maestro", "preprocess", str(tmp_path / "ds"), str(tmp_path / "tf"),
                   "--direct_num_workers=1", "--direct_running_mode=in_memory"])
    assert status == 0
    summary = json.loads((tmp_path / "tf" / "preprocess.json").read_text())
    assert summary["splits"]["train"]["recordings"] == 1
    assert (tmp_path / "tf" / "transcription" / "train.tfrecord-00000-of-00001").stat().st_size > 0


def test_unknown_options_are_refused_where_no_beam_options_go(tmp_path):
    with pytest.raises(SystemExit):
        main(["synthesize", str(tmp_path), str(tmp_path / "o"), "--runner=DataflowRunner"])


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["maestro", "preprocess", str(tmp_path / "none"), str(tmp_path / "o")]) == 2
    assert "maestro-v" in capsys.readouterr().err


def test_render_reads_its_default_midi_folder_from_the_environment_or_says_it_has_none(tmp_path, capsys,
                                                                                      monkeypatch):
    monkeypatch.delenv("W2M2W_ASAP_DIR", raising=False)
    assert main(["maestro", "render", str(tmp_path / "ds")]) == 2
    assert "no MIDI_DIR given and W2M2W_ASAP_DIR is not set" in capsys.readouterr().err
    monkeypatch.setenv("W2M2W_ASAP_DIR", str(tmp_path / "asap"))
    assert main(["maestro", "render", str(tmp_path / "ds")]) == 2
    assert capsys.readouterr().err.strip() == f"w2m2w: error: input not found: {tmp_path / 'asap'}"
    assert not (tmp_path / "ds").exists()


@pytest.mark.slow
def test_evaluate_transcribe_uses_the_rescorer_beside_the_checkpoint_unless_told(rendered, checkpoints, tmp_path,
                                                                                  capsys, monkeypatch):
    import shutil

    import numpy as np

    from transcribe.rescorer.rescore import NUM_FEATURES, build_rescorer, rescorer_path
    from transcribe.transcriber import Transcriber

    checkpoint = shutil.copy(checkpoints / "transcriber.keras", tmp_path / "tiny.keras")  # the session's tiny one
    rejecting = build_rescorer(np.random.default_rng(0).normal(size=(16, NUM_FEATURES)).astype(np.float32), 0.0)
    rejecting.logit.kernel.assign(np.zeros(rejecting.logit.kernel.shape, np.float32))
    rejecting.logit.bias.assign([-1e3])  # accepts no candidate: no note at all
    rejecting.save(rescorer_path(checkpoint))
    loaded = []
    load = Transcriber.load
    monkeypatch.setattr(Transcriber, "load", lambda *a, **k: loaded.append(load(*a, **k)) or loaded[-1])
    for flags in ([], ["--no-rescorer"]):
        assert main(["evaluate", "transcribe", str(rendered), "--split", "train", "--limit", "1",
                     "--checkpoint", str(checkpoint), *flags]) == 0
        scores = json.loads(capsys.readouterr().out)
        if not flags:
            assert scores["note/precision"] == 0.0 and scores["note/recall"] == 0.0
    assert loaded[0].rescorer is not None and loaded[1].rescorer is None
