"""The checkpoint bundle (stages/checkpoints.py): which checkpoint a request uses, the companions
found beside it, and that no other module names the shipped files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stages.checkpoints import (
    bundle_files,
    checkpoint_for,
    companion,
    read_record,
    shipped_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_checkpoints_lie_in_their_packages():
    for package in ("transcribe", "compose", "synthesize"):
        assert shipped_checkpoint(package) == REPO / package / "checkpoints" / "default.keras"
        assert checkpoint_for(package) == shipped_checkpoint(package)
    assert shipped_checkpoint("compose", "conditioned") == REPO / "compose" / "checkpoints" / "conditioned.keras"


def test_a_given_checkpoint_is_used_unchanged_and_steering_picks_the_conditioned_composer():
    assert checkpoint_for("transcribe", "gs://bucket/mine.keras") == "gs://bucket/mine.keras"
    assert checkpoint_for("compose", Path("mine.keras"), composer="Bach") == Path("mine.keras")
    conditioned = shipped_checkpoint("compose", "conditioned")
    assert checkpoint_for("compose", composer="Bach") == conditioned
    assert checkpoint_for("compose", notes_per_second=6.0) == conditioned
    assert checkpoint_for("compose", from_nothing=True) == conditioned
    assert checkpoint_for("synthesize", from_nothing=True) == shipped_checkpoint("synthesize")


def test_companions_are_named_by_the_stem_and_keep_the_path_type():
    assert companion(Path("a/mine.keras"), "rescorer") == Path("a/mine.rescorer.keras")
    assert companion("gs://b/mine.keras", "rescorer") == "gs://b/mine.rescorer.keras"
    assert companion(Path("a/mine.keras"), "pedal") == Path("a/mine.pedal.keras")
    assert companion(Path("a/mine"), "record") == Path("a/mine.json")
    assert companion(Path("a/mine.keras"), "rescorer_record") == Path("a/mine.rescorer.json")


def test_the_bundle_holds_every_file_of_the_stem_and_its_records(tmp_path):
    for name in ("mine.keras", "mine.json", "mine.rescorer.keras", "mine.rescorer.json", "other.keras", ".mine.x"):
        (tmp_path / name).write_text("{}" if name.endswith(".json") else "")
    (tmp_path / "mine.json").write_text('{"config": "tiny"}')
    assert [p.name for p in bundle_files(tmp_path / "mine.keras")] == [
        "mine.json", "mine.keras", "mine.rescorer.json", "mine.rescorer.keras"]
    assert read_record(tmp_path / "mine.keras") == {"config": "tiny"}
    assert read_record(tmp_path / "mine.keras", "rescorer_record") == {}
    assert read_record(tmp_path / "other.keras") is None


@pytest.mark.slow
def test_the_flow_and_the_composer_choose_the_same_checkpoint():
    from compose.composer import shipped_checkpoint as composer_choice
    from flows.full import _checkpoint

    for request in ({}, {"composer": "Bach"}, {"notes_per_second": 20.0}):
        assert _checkpoint(None, "compose", **request) == composer_choice(**request)


def test_only_the_bundle_names_the_shipped_checkpoint_files():
    skipped = {"tests", "benchmarks", "examples", "scripts", ".venv", "runs", "data", ".git"}
    naming = sorted(path.relative_to(REPO).as_posix() for path in REPO.rglob("*.py")
                    if not skipped & set(path.relative_to(REPO).parts)
                    and re.search(r"default\.keras|conditioned\.keras", path.read_text(encoding="utf-8")))
    assert naming == ["stages/checkpoints.py"]


def test_the_shipped_transcription_checkpoints_name_our_classes_as_registered():
    """Keras loads a class by the registered name a checkpoint stores ("package>Name"), whatever
    module holds it now: moving a module must leave these names as the shipped files have them."""
    import json
    import zipfile

    import keras

    from transcribe.onsets_frames.model import OnsetsAndFrames
    from transcribe.pedal.pedal import PedalNet
    from transcribe.rescorer.rescore import OnsetRescorer

    folder = REPO / "transcribe" / "checkpoints"
    for name, cls in (("default.keras", OnsetsAndFrames), ("default.rescorer.keras", OnsetRescorer),
                      ("default.pedal.keras", PedalNet)):
        with zipfile.ZipFile(folder / name) as bundle:
            stored = json.loads(bundle.read("config.json"))["registered_name"]
        assert stored == keras.saving.get_registered_name(cls) == f"wave2midi2wave.transcribe>{cls.__name__}"
        assert keras.saving.get_registered_object(stored) is cls
