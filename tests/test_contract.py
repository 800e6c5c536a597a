"""The stage contract: mirror, skip, atomic writes, config record, per-file errors, inputs safe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stages.contract import InputError, Stage, StageConfigError, UsageError, remove_stale_partials


class Upper(Stage):
    """A toy stage: .txt -> .up with the text upper-cased; 'bad' files fail after a partial write."""

    name = "upper"
    input_suffixes = (".txt",)
    output_suffixes = {"text": ".up"}

    def __init__(self, suffix: str = ""):
        self.suffix = suffix
        self.calls = 0

    def config(self):
        return {"suffix": self.suffix}

    def process(self, job, temporaries):
        self.calls += 1
        text = job.source.read_text()
        temporaries["text"].write_text("PARTIAL")
        if "bad" in text:
            raise InputError("the file says bad")
        temporaries["text"].write_text(text.upper() + self.suffix)


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "in"
    for relative, text in {"a.txt": "alpha", "sub/b.txt": "beta", "sub/deeper/c.txt": "bad gamma",
                           "ignored.wav": "x"}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_mirrors_tree_and_reports_bad_file_without_stopping(tree, tmp_path):
    out = tmp_path / "out"
    report = Upper().run(tree, out, progress=False)
    assert (out / "a.up").read_text() == "ALPHA"
    assert (out / "sub" / "b.up").read_text() == "BETA"
    assert not (out / "sub" / "deeper" / "c.up").exists()
    assert [e.path for e in report.failed] == [str(tree / "sub" / "deeper" / "c.txt")]
    assert report.failed[0].reason == "the file says bad"
    assert len(report.written) == 2 and not report.ok
    # No temporary survives a failure or a success.
    assert not [p for p in out.rglob("*") if ".partial-" in p.name]


def test_skips_done_outputs_unless_overwrite(tree, tmp_path):
    out = tmp_path / "out"
    Upper().run(tree, out, progress=False)
    (out / "a.up").write_text("kept")
    again = Upper()
    report = again.run(tree, out, progress=False)
    assert (out / "a.up").read_text() == "kept"
    assert sorted(report.skipped) == sorted([str(tree / "a.txt"), str(tree / "sub" / "b.txt")])
    assert again.calls == 1  # only the failed file is tried again
    Upper().run(tree, out, overwrite=True, progress=False)
    assert (out / "a.up").read_text() == "ALPHA"


def test_records_config_and_refuses_mixing_configurations(tree, tmp_path):
    out = tmp_path / "out"
    Upper("!").run(tree, out, progress=False)
    assert json.loads((out / "upper.stage.json").read_text()) == {"stage": "upper", "config": {"suffix": "!"}}
    with pytest.raises(StageConfigError):
        Upper("?").run(tree, out, progress=False)
    Upper("?").run(tree, out, overwrite=True, progress=False)
    assert (out / "a.up").read_text() == "ALPHA?"


def test_file_list_input_and_output_inside_input(tree):
    out = tree / "results"  # nested in the input folder: its files must not become inputs
    report = Upper().run([tree / "a.txt", tree / "sub" / "b.txt"], out, progress=False)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.up")) == ["a.up", "sub/b.up"]
    (out / "x.txt").write_text("made by someone")
    report = Upper().run(tree, out, progress=False)
    assert str(out / "x.txt") not in report.written + report.skipped


def test_never_writes_over_an_input(tmp_path):
    class Same(Upper):
        output_suffixes = {"text": ".txt"}

    (tmp_path / "a.txt").write_text("precious")
    with pytest.raises(UsageError, match="output folder is the input folder"):  # outputs would feed back
        Same().run(tmp_path, tmp_path, overwrite=True, progress=False)
    report = Same().run([tmp_path / "a.txt"], tmp_path, overwrite=True, progress=False)
    assert (tmp_path / "a.txt").read_text() == "precious"
    assert "over the input" in report.failed[0].reason


@pytest.mark.slow
def test_parallel_workers_give_the_same_outputs(tree, tmp_path):
    Upper().run(tree, tmp_path / "one", progress=False)
    report = Upper().run(tree, tmp_path / "two", workers=2, progress=False)
    assert len(report.written) == 2 and len(report.failed) == 1
    for path in (tmp_path / "one").rglob("*.up"):
        assert (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_text() == path.read_text()


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".x.partial-999999999-abcd.up"
    alive = tmp_path / f".y.partial-{os.getpid()}-abcd.up"
    dead.write_text("")
    alive.write_text("")
    remove_stale_partials(tmp_path)
    assert not dead.exists() and alive.exists()


def test_missing_input_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        Upper().run(tmp_path / "nope", tmp_path / "out", progress=False)
