"""A corpus of bad inputs, made here (no binary blobs), through every stage's command.

Each bad file gets one line naming it and the reason, the rest of the batch is processed, the
exit status is 1 (2 for a bad command: then nothing is written), no partial or empty output is
left, and the inputs are never touched. docs/bad-inputs.md lists the same cases.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile

from pipeline import main
from stages.contract import PARTIAL_MARK
from tests.conftest import make_midi, phrase

REPO = Path(__file__).resolve().parents[1]


# -- helpers ---------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, str]:
    """Every file under a folder (links not followed) -> a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def assert_clean(out: Path) -> None:
    """No temporary and no empty file under an output folder."""
    files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not [p for p in files if PARTIAL_MARK in p.name], "a partial file was left"
    assert not [p for p in files if p.stat().st_size == 0], "an empty output was left"


def failures(text: str) -> dict[str, str]:
    """'  FAILED <path>: <reason>' lines -> {file name: reason}."""
    found = {}
    for line in text.splitlines():
        if line.strip().startswith("FAILED "):
            path, _, reason = line.strip()[len("FAILED "):].partition(": ")
            found[Path(path).name] = reason
    return found


def tone(seconds: float, rate: int = 16_000, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * (t % 0.5))
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def drums_midi(path: Path) -> Path:
    midi = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    kit.notes = [pretty_midi.Note(100, 36 + i % 10, 0.2 * i, 0.2 * i + 0.1) for i in range(10)]
    midi.instruments.append(kit)
    midi.write(str(path))
    return path


def no_notes_midi(path: Path) -> Path:
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(pretty_midi.Instrument(program=0))
    midi.write(str(path))
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(err: str, fragment: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("w2m2w: error:"), err
    assert fragment in lines[0], err
    assert "Traceback" not in err


# -- transcribe ------------------------------------------------------------------------------

def make_audio_corpus(folder: Path) -> dict[str, str]:
    """Bad recordings (name -> the reason the user is told) and two good ones."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_bytes(folder / "empty.wav", b"")
    write_bytes(folder / "garbage.wav", rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    write_bytes(folder / "text.mp3", b"this is not audio at all\n" * 20)
    soundfile.write(folder / "whole.flac", tone(2.0), 16_000)
    write_bytes(folder / "truncated.flac", (folder / "whole.flac").read_bytes()[:60])
    (folder / "whole.flac").unlink()
    soundfile.write(folder / "silent.wav", np.zeros(16_000, np.float32), 16_000)
    nan = tone(1.0)
    nan[100:200] = np.nan
    soundfile.write(folder / "nan.wav", nan, 16_000, subtype="FLOAT")
    soundfile.write(folder / "short.wav", tone(0.2), 16_000)
    (folder / "folder.wav").mkdir()  # a folder named like audio: not an input
    soundfile.write(folder / "good.wav", tone(1.0), 16_000)
    (folder / "sub").mkdir()
    soundfile.write(folder / "sub" / "stereo-44k.flac", tone(1.0, 44_100, 2), 44_100)  # odd rate, channels: fine
    return {"empty.wav": "empty file (0 bytes)", "garbage.wav": "cannot decode audio",
            "text.mp3": "cannot decode audio", "truncated.flac": "cannot decode audio",
            "silent.wav": "silent", "nan.wav": "NaN", "short.wav": "too short"}


@pytest.mark.slow
def test_transcribe_reports_each_bad_recording_and_writes_the_good_ones(checkpoints, tmp_path, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    expected = make_audio_corpus(inputs)
    before = snapshot(inputs)
    status, text, _ = run(["transcribe", str(inputs), str(out), "--checkpoint", str(checkpoints / "transcriber.keras")],
                          capsys)
    assert status == 1
    found = failures(text)
    assert set(found) == set(expected)
    for name, fragment in expected.items():
        assert fragment in found[name], (name, found[name])
        assert "\n" not in found[name] and len(found[name]) < 300
    assert "libsndfile: not a format it reads; no other decoder reads it" in found["text.mp3"]  # not "NoBackendError: "
    assert (out / "good.midi").is_file() and (out / "sub" / "stereo-44k.midi").is_file()
    assert not (out / "folder.midi").exists()
    assert_clean(out)
    assert snapshot(inputs) == before
    assert text.splitlines()[0].startswith("transcribe: 2 written, 0 skipped (already done), 7 failed")


@pytest.mark.parametrize("kind", ["missing", "folder", "truncated", "wav", "composer", "lambda"])
@pytest.mark.slow
def test_a_bad_checkpoint_fails_once_before_anything_is_written(kind, checkpoints, tmp_path, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    soundfile.write(inputs / "good.wav", tone(1.0), 16_000)
    checkpoint = {"missing": tmp_path / "nope.keras", "folder": tmp_path,
                  "truncated": tmp_path / "cut.keras", "wav": inputs / "good.wav",
                  "composer": checkpoints / "composer.keras", "lambda": tmp_path / "lambda.keras"}[kind]
    if kind == "truncated":
        data = (checkpoints / "transcriber.keras").read_bytes()
        checkpoint.write_bytes(data[: len(data) // 2])
    if kind == "lambda":  # code in a Lambda layer: Keras' safe mode refuses to load it, never runs it
        import keras

        checkpoint = tmp_path / "lambda.keras"
        marker = tmp_path / "ran"
        touches = eval(f"lambda x: x + len(str(__import__('pathlib').Path({str(marker)!r}).touch()))")  # noqa: S307
        keras.Sequential([keras.Input((1,)), keras.layers.Lambda(touches)]).save(checkpoint)
        marker.unlink()
    fragment = {"missing": "not found", "folder": "is a folder", "truncated": "not a .keras file",
                "wav": "not a .keras file", "composer": "not a transcriber checkpoint",
                "lambda": "cannot load the transcriber checkpoint"}[kind]
    status, text, err = run(["transcribe", str(inputs), str(out), "--checkpoint", str(checkpoint)], capsys)
    assert status == 2
    assert_one_line_error(err, fragment)
    assert not (tmp_path / "ran").exists()
    assert not text and not (out / "transcribe.stage.json").exists() and not list(out.rglob("*.midi"))
    # The right checkpoint then works in the same folder: no configuration was recorded.
    status, text, _ = run(["transcribe", str(inputs), str(out), "--checkpoint",
                           str(checkpoints / "transcriber.keras")], capsys)
    assert status == 0 and (out / "good.midi").is_file()


def test_the_rescorer_decides_far_from_its_threshold_without_overflow():
    import warnings

    from transcribe.rescorer.rescore import NUM_FEATURES, build_rescorer, note_probabilities

    rescorer = build_rescorer(np.random.default_rng(0).normal(size=(16, NUM_FEATURES)).astype(np.float32), 0.1)
    rescorer.logit.kernel.assign(np.zeros(rescorer.logit.kernel.shape, np.float32))
    probs = {name: np.random.default_rng(1).uniform(0, 1, (40, 88)).astype(np.float32)
             for name in ("onsets", "frames", "offsets", "velocities")}
    for bias, expected in ((-1e4, 0.0), (1e4, 1.0)):
        rescorer.logit.bias.assign([bias])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # np.exp overflowed here for logits far below 0
            _, note_probs = note_probabilities(rescorer, probs)
        assert len(note_probs) and np.all(note_probs == expected)


@pytest.mark.slow
def test_transcribe_command_errors_are_one_line_and_fast(checkpoints, tmp_path, capsys):
    checkpoint = str(checkpoints / "transcriber.keras")
    (tmp_path / "in").mkdir()
    soundfile.write(tmp_path / "in" / "good.wav", tone(1.0), 16_000)
    status, _, err = run(["transcribe", str(tmp_path / "nosuch"), str(tmp_path / "out")], capsys)
    assert status == 2
    assert_one_line_error(err, "not found: ")
    (tmp_path / "file").write_text("a file")
    status, _, err = run(["transcribe", str(tmp_path / "in"), str(tmp_path / "file"), "--checkpoint", checkpoint],
                         capsys)
    assert status == 2
    assert_one_line_error(err, "is a file")
    assert (tmp_path / "file").read_text() == "a file"
    # Outputs of another checkpoint in the folder: refused in one line, nothing touched.
    assert run(["transcribe", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", checkpoint], capsys)[0] == 0
    other = tmp_path / "other.keras"
    import keras

    from transcribe.config import TranscriberConfig
    from transcribe.onsets_frames.model import build_model

    keras.utils.set_random_seed(5)
    build_model(TranscriberConfig.tiny()).save(other)
    before = snapshot(tmp_path / "out")
    status, _, err = run(["transcribe", str(tmp_path / "in"), str(tmp_path / "out"), "--checkpoint", str(other)],
                         capsys)
    assert status == 2
    assert_one_line_error(err, "another configuration")
    assert snapshot(tmp_path / "out") == before


@pytest.mark.slow
def test_nosuch_input_is_refused_before_tensorflow_loads(tmp_path):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(REPO / "pipeline.py"), "transcribe", str(tmp_path / "nosuch"),
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"w2m2w: error: input not found: {tmp_path / 'nosuch'}"]
    assert seconds < 5, f"{seconds:.1f} s"  # TensorFlow alone takes longer to load


@pytest.mark.slow
def test_a_full_disk_is_named_and_leaves_no_partial(checkpoints, tmp_path, capsys, monkeypatch):
    import transcribe.stage

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    soundfile.write(inputs / "good.wav", tone(1.0), 16_000)
    checkpoint = str(checkpoints / "transcriber.keras")

    def full_disk(sequence, path):
        Path(path).write_bytes(b"MThd")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(transcribe.stage, "write_midi", full_disk)
        status, text, _ = run(["transcribe", str(inputs), str(out), "--checkpoint", checkpoint], capsys)
    assert status == 1 and failures(text) == {"good.wav": "no space left on device"}
    assert_clean(out)
    # The disk full while the configuration is recorded: one line, no hidden partial left.
    shutil.rmtree(out)
    real_write = Path.write_bytes

    def full_disk_for_records(self, data):
        if ".stage" in self.name:
            real_write(self, data[:3])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write(self, data)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_bytes", full_disk_for_records)
        status, _, err = run(["transcribe", str(inputs), str(out), "--checkpoint", checkpoint], capsys)
    assert status == 1
    assert_one_line_error(err, "no space left on device")
    assert not [p for p in out.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_keeps_finished_files(checkpoints, tmp_path, capsys, monkeypatch):
    from transcribe.stage import TranscribeStage

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for i in range(3):
        soundfile.write(inputs / f"piece{i}.wav", tone(1.0), 16_000)
    process = TranscribeStage.process
    calls = []

    def interrupted_on_the_second(self, job, temporaries):
        calls.append(job)
        if len(calls) == 2:
            temporaries["midi"].write_bytes(b"MThd")  # half written when Ctrl-C comes
            raise KeyboardInterrupt
        return process(self, job, temporaries)

    monkeypatch.setattr(TranscribeStage, "process", interrupted_on_the_second)
    status, _, err = run(["transcribe", str(inputs), str(out), "--checkpoint", str(checkpoints / "transcriber.keras")],
                         capsys)
    assert status == 130
    assert [line for line in err.splitlines() if line.strip()] == [
        "w2m2w: interrupted; finished files are kept, and the same command goes on from there"]
    assert sorted(p.name for p in out.glob("*.midi")) == ["piece0.midi"]
    assert_clean(out)


# -- compose ---------------------------------------------------------------------------------

def make_midi_corpus(folder: Path, long_seconds: float | None = None) -> dict[str, str]:
    """Bad MIDI files (name -> the reason the user is told) and one good one."""
    folder.mkdir(parents=True)
    write_bytes(folder / "empty.mid", b"")
    write_bytes(folder / "garbage.mid", b"MThd not really a MIDI file" * 10)
    make_midi(folder / "whole.mid", phrase(3, 3.0))
    write_bytes(folder / "truncated.mid", (folder / "whole.mid").read_bytes()[:30])
    (folder / "whole.mid").unlink()
    no_notes_midi(folder / "nonotes.mid")
    drums_midi(folder / "drums.mid")
    make_midi(folder / "stuck.mid", [(0.1, 0.5, 60, 80), (0.2, 3600.2, 64, 80)])
    make_midi(folder / "good.mid", phrase(4, 1.5))
    expected = {"empty.mid": "empty file (0 bytes)", "garbage.mid": "not a readable MIDI file",
                "truncated.mid": "not a readable MIDI file", "nonotes.mid": "no notes",
                "drums.mid": "only drum notes", "stuck.mid": "a note lasts 3600 s"}
    if long_seconds:
        make_midi(folder / "long.mid", phrase(5, long_seconds))
        expected["long.mid"] = "s allowed (--max-seconds)"
    return expected


@pytest.mark.slow
def test_compose_reports_each_bad_midi_and_continues_the_good_one(checkpoints, tmp_path, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    expected = make_midi_corpus(inputs)
    make_midi(inputs / "pedal.mid", [(0.1, 0.4, 60, 80)], pedal=[(0.05, 127), (3600.0, 0)])
    expected["pedal.mid"] = "sustain pedal never released"
    before = snapshot(inputs)
    status, text, _ = run(["compose", str(inputs), str(out), "--checkpoint", str(checkpoints / "composer.keras"),
                           "--seconds", "2", "--primer-seconds", "1", "--max-tokens", "64"], capsys)
    assert status == 1
    found = failures(text)
    assert set(found) == set(expected)
    for name, fragment in expected.items():
        assert fragment in found[name], (name, found[name])
    assert sorted(p.name for p in out.glob("*.midi")) == ["good.midi"]
    assert_clean(out)
    assert snapshot(inputs) == before


@pytest.mark.slow
def test_compose_refuses_its_input_folder_as_output_and_bad_lengths(checkpoints, tmp_path, capsys):
    inputs = tmp_path / "in"
    make_midi(inputs / "good.mid", phrase(4, 1.5))
    before = snapshot(inputs)
    status, _, err = run(["compose", str(inputs), str(inputs), "--checkpoint", str(checkpoints / "composer.keras")],
                         capsys)
    assert status == 2
    assert_one_line_error(err, "the output folder is the input folder")
    assert snapshot(inputs) == before
    for option, value in (("--seconds", "-5"), ("--primer-seconds", "0"), ("--max-tokens", "0"), ("--seconds", "x")):
        with pytest.raises(SystemExit) as exit_info:
            main(["compose", str(inputs), str(tmp_path / "out"), option, value])
        assert exit_info.value.code == 2
        assert option in capsys.readouterr().err
    status, _, err = run(["compose", str(inputs), str(tmp_path / "out"),
                          "--checkpoint", str(checkpoints / "transcriber.keras")], capsys)
    assert status == 2
    assert_one_line_error(err, "composer checkpoint")  # "cannot load": incremental sampling needs a MusicTransformer


# -- synthesize ------------------------------------------------------------------------------

@pytest.mark.slow
def test_synthesize_reports_each_bad_midi_and_renders_the_good_one(checkpoints, tmp_path, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    expected = make_midi_corpus(inputs, long_seconds=6.0)
    before = snapshot(inputs)
    status, text, _ = run(["synthesize", str(inputs), str(out), "--checkpoint", str(checkpoints / "synthesizer.keras"),
                           "--max-seconds", "3"], capsys)
    assert status == 1
    found = failures(text)
    assert set(found) == set(expected)
    for name, fragment in expected.items():
        assert fragment in found[name], (name, found[name])
    assert sorted(p.name for p in out.glob("*.wav")) == ["good.wav"]
    assert_clean(out)
    assert snapshot(inputs) == before
    with pytest.raises(SystemExit):
        main(["synthesize", str(inputs), str(out), "--max-seconds", "-1"])
    assert "--max-seconds" in capsys.readouterr().err


# -- full ------------------------------------------------------------------------------------

def test_full_refuses_bad_commands_at_once_without_tracebacks(tmp_path, capsys):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(REPO / "pipeline.py"), "full", str(tmp_path / "nosuch"),
                             str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    assert result.returncode == 2 and not result.stdout
    assert result.stderr.strip().splitlines() == [f"w2m2w: error: input not found: {tmp_path / 'nosuch'}"]
    assert seconds < 5, f"{seconds:.1f} s"  # no Prefect server, no retries
    assert not (tmp_path / "run").exists()
    for option, value in (("--seconds", "-5"), ("--primer-seconds", "0"), ("--stages", "transcribe,bogus"),
                          ("--finetune-steps", "-1")):
        with pytest.raises(SystemExit) as exit_info:
            main(["full", str(tmp_path), str(tmp_path / "run"), option, value])
        assert exit_info.value.code == 2
        assert option in capsys.readouterr().err


@pytest.mark.slow
def test_flow_checks_parameters_first_and_retries_only_what_may_be_transient(tmp_path):
    # (no capsys here: Prefect's log handlers keep the stderr they find when first imported)
    from prefect.states import Failed

    from flows.full import check_parameters

    with pytest.raises(ValueError, match="run folder is the input folder"):
        check_parameters(tmp_path, tmp_path, ["transcribe"], {})
    with pytest.raises(ValueError, match="checkpoint not found"):
        check_parameters(tmp_path, tmp_path / "run", ["transcribe"], {"transcriber": tmp_path / "nope.keras"})

    from flows.tasks import may_be_transient
    from stages.contract import InputError, StageConfigError

    for error in (FileNotFoundError("nosuch"), ValueError("bad"), InputError("bad file"), StageConfigError("mixed"),
                  OSError(errno.ENOSPC, "No space left on device"), PermissionError("denied")):
        assert not may_be_transient(None, None, Failed(data=error)), error
    for error in (RuntimeError("worker died"), ConnectionError("reset"), TimeoutError()):
        assert may_be_transient(None, None, Failed(data=error)), error


def test_flow_cache_key_covers_every_file_the_model_loads_and_the_version(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import flows.tasks
    from flows.tasks import content_key

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"audio")
    models = tmp_path / "models"
    models.mkdir()
    checkpoint = models / "default.keras"
    checkpoint.write_bytes(b"transcriber")
    context = SimpleNamespace(task=SimpleNamespace(name="transcribe"))
    parameters = {"inputs": tmp_path / "in", "out": tmp_path / "out", "checkpoint": checkpoint, "note_ends": True}

    def key() -> str:
        return content_key(context, parameters)

    first = key()
    (models / "other.keras").write_bytes(b"another model")  # not this checkpoint's
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.midi").write_bytes(b"an output")  # what the task writes is not what it reads
    assert key() == first
    changed = []
    for name, data in (("default.rescorer.keras", b"rescorer"), ("default.rescorer.keras", b"new rescorer"),
                       ("default.json", b"{}"), ("default.keras", b"retrained")):
        (models / name).write_bytes(data)
        changed.append(key())
    assert len({first, *changed}) == 5
    monkeypatch.setattr(flows.tasks, "code_version", lambda: "99.0")
    assert key() != changed[-1]


# -- maestro render, preprocess, retranscribe ------------------------------------------------

def test_render_reads_a_midi_named_like_an_option_as_a_file(tmp_path, capsys, monkeypatch):
    inputs = tmp_path / "in"
    make_midi(inputs / "-Fvictim.mid", phrase(6, 2.0))
    write_bytes(inputs / "garbage.mid", b"not midi")
    (inputs / "victim.mid").write_text("precious")  # what fluidsynth would overwrite given -F victim.mid
    monkeypatch.chdir(inputs)
    status, text, _ = run(["maestro", "render", str(inputs), str(tmp_path / "ds"), "--workers", "1",
                           "--augment-splits", "none"], capsys)
    assert status == 1
    assert set(failures(text)) == {"garbage.mid", "victim.mid"}  # "precious" is no MIDI file either
    assert (inputs / "victim.mid").read_text() == "precious"
    rendered = [p.name for p in (tmp_path / "ds").rglob("*.wav")]
    assert rendered == ["-Fvictim.wav"]
    audio, _ = soundfile.read(next((tmp_path / "ds").rglob("*.wav")))
    assert np.abs(audio).max() > 0.01
    status, _, err = run(["maestro", "render", str(tmp_path / "nosuch"), str(tmp_path / "ds2")], capsys)
    assert status == 2
    assert_one_line_error(err, "input not found")


def write_rows(root: Path, rows: list[dict]) -> None:
    import csv

    from maestro.metadata import FIELDS

    path = next(root.glob("maestro-v*.csv"))
    with path.open(newline="") as handle:
        existing = list(csv.DictReader(handle))
    for name in root.glob("maestro-v*.json"):
        name.unlink()  # the CSV is read first; keep one source of truth
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(existing + rows)


def row(split: str, audio: str, midi: str) -> dict:
    return {"canonical_composer": "Nobody", "canonical_title": "Bad", "split": split, "year": 2018,
            "midi_filename": midi, "audio_filename": audio, "duration": 1.0}


@pytest.mark.slow
def test_preprocess_refuses_escaping_paths_and_bad_metadata(rendered, tmp_path, capsys):
    from maestro.metadata import Dataset

    root = tmp_path / "ds"
    shutil.copytree(rendered, root)
    record = Dataset.open(root).records[0]
    (tmp_path / "outside.wav").write_bytes((root / record.audio_filename).read_bytes())
    write_rows(root, [row(record.split, "../outside.wav", record.midi_filename)])
    status, text, _ = run(["maestro", "preprocess", str(root), str(tmp_path / "tf"), "--direct_num_workers=1",
                           "--direct_running_mode=in_memory", "--min-seconds", "1", "--max-seconds", "2.5"], capsys)
    assert status == 1
    summary = json.loads(text)
    assert [path for path, _ in summary["failed"]] == ["../outside.wav"]
    assert "escapes the dataset root" in summary["failed"][0][1]
    # Metadata that lacks a column: one line.
    (root / "maestro-v3.0.0.csv").write_text("split,audio_filename\ntrain,x.wav\n")
    status, _, err = run(["maestro", "preprocess", str(root), str(tmp_path / "tf2")], capsys)
    assert status == 2
    assert_one_line_error(err, "metadata record lacks")


@pytest.mark.slow
def test_retranscribe_never_writes_outside_its_output_folder(rendered, checkpoints, tmp_path, capsys):
    from maestro.metadata import Dataset

    root = tmp_path / "ds"
    shutil.copytree(rendered, root)
    record = next(r for r in Dataset.open(root).records if r.split == "test")
    year, name = Path(record.audio_filename).parent.name, Path(record.audio_filename).stem
    (root / year / "sub").mkdir()
    (root / "d").symlink_to(Path(year) / "sub")
    soundfile.write(root / year / "short.wav", tone(0.2), 16_000)
    write_rows(root, [row("test", f"d/../../{year}/{name}.wav", record.midi_filename),
                      row("test", str(root / record.audio_filename), record.midi_filename),
                      row("test", f"{year}/short.wav", record.midi_filename)])
    before = snapshot(root)
    stale = root / "rt" / year / f"{name}.midi.partial"  # left by a killed run
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"MThd")
    status, text, _ = run(["maestro", "retranscribe", str(root), str(root / "rt"), "--splits", "test",
                           "--checkpoint", str(checkpoints / "transcriber.keras"),
                           "--direct_num_workers=1", "--direct_running_mode=in_memory"], capsys)
    assert status == 1
    found = {line.split(": ", 1)[0].strip()[len("FAILED "):]: line.split(": ", 1)[1]
             for line in text.splitlines() if line.strip().startswith("FAILED ")}
    assert "escapes the output folder" in found[f"d/../../{year}/{name}.wav"]
    assert "absolute path" in found[str(root / record.audio_filename)]
    assert "too short" in found[f"{year}/short.wav"]
    assert snapshot(root) == {**before, **{k: v for k, v in snapshot(root).items() if k.startswith("rt/")}}
    assert (root / "rt" / year / f"{name}.midi").is_file() and not stale.exists()
    assert_clean(root / "rt")


# -- benchmark -------------------------------------------------------------------------------

def test_benchmark_refuses_missing_folders_and_references(tmp_path, capsys):
    (tmp_path / "refs").mkdir()
    (tmp_path / "est").mkdir()
    status, _, err = run(["benchmark", str(tmp_path / "refs"), str(tmp_path / "nosuch"), "--out", str(tmp_path / "r")],
                         capsys)
    assert status == 2
    assert_one_line_error(err, "input not found")
    status, _, err = run(["benchmark", str(tmp_path / "refs"), str(tmp_path / "est"), "--out", str(tmp_path / "r")],
                         capsys)
    assert status == 2
    assert_one_line_error(err, "no reference MIDI")


# -- second round (issue 62): options, sizes, outputs, links and names, batch tools ------------

def usage_error(argv: list[str], capsys) -> str:
    """argparse's error for a bad option value: exit status 2; returns what it printed."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


BAD_OPTION_VALUES = [
    ("compose", "--temperature", ["nan", "inf", "-1", "0"]),
    ("compose", "--top-p", ["2", "0", "nan"]),
    ("compose", "--top-k", ["-1", "1.5"]),
    ("compose", "--notes-per-second", ["nan", "-3"]),
    ("compose", "--seed", ["-1", "nan"]),
    ("compose", "--count", ["0", "-1"]),
    ("synthesize", "--temperature", ["nan", "-1", "inf"]),
    ("synthesize", "--level", ["nan", "-1", "1e9"]),
    ("synthesize", "--seed", ["-1"]),
    ("transcribe", "--midi-tempo", ["0", "nan", "-120"]),
    ("transcribe", "--onset-threshold", ["2", "nan"]),
    ("transcribe", "--min-note-ms", ["-1", "inf"]),
    ("transcribe", "--max-seconds", ["0", "nan"]),
    ("full", "--seed", ["-1"]),
    ("full", "--seconds", ["nan", "601"]),  # the flow's own bound, said before Prefect starts
    ("maestro render", "--workers", ["0"]),
    ("maestro render", "--sample-rate", ["1", "nan"]),
    ("maestro preprocess", "--min-seconds", ["nan"]),
    ("maestro retranscribe", "--batch-size", ["0"]),
    ("maestro retranscribe", "--years", ["x", "-5"]),
]


@pytest.mark.parametrize("command, option, values", BAD_OPTION_VALUES,
                         ids=[f"{c.replace(' ', '-')}{o}" for c, o, _ in BAD_OPTION_VALUES])
def test_every_numeric_option_is_checked_when_parsed(command, option, values, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    for value in values:
        err = usage_error([*command.split(), str(tmp_path / "in"), str(out), f"{option}={value}"], capsys)
        assert f"argument {option}: " in err and value in err.splitlines()[-1], (option, value, err)
        assert "Traceback" not in err
    assert not out.exists()


def test_the_python_api_checks_the_same_settings(checkpoints):
    from compose.composer import Composer
    from synthesize.config import RenderSettings
    from synthesize.stage import SynthesizeStage
    from transcribe.config import DecodingSettings
    from transcribe.stage import TranscribeStage

    for settings, fragment in (({"temperature": float("nan")}, "temperature must be a finite number"),
                               ({"top_p": 2.0}, "top_p must be above 0 and at most 1"),
                               ({"seed": -1}, "seed must be from 0")):
        with pytest.raises(ValueError, match=fragment):
            Composer(checkpoints / "composer.keras", **settings)
    with pytest.raises(ValueError, match="output_rms_lsb"):
        SynthesizeStage(checkpoints / "synthesizer.keras", RenderSettings(output_rms_lsb=float("nan")))
    with pytest.raises(ValueError, match="midi_tempo"):
        TranscribeStage(checkpoints / "transcriber.keras", DecodingSettings(midi_tempo=0.0))


def test_compose_says_when_max_tokens_cannot_reach_the_seconds_asked(checkpoints, tmp_path, capsys, caplog):
    make_midi(tmp_path / "in" / "good.mid", phrase(4, 1.5))
    status, text, err = run(["compose", str(tmp_path / "in"), str(tmp_path / "out"), "--seconds", "100000"], capsys)
    assert status == 2 and not text
    assert_one_line_error(err, "--seconds 100000 cannot be reached in --max-tokens 4096 events")
    assert not (tmp_path / "out").exists()
    # Within reach of the bound but cut short by --max-tokens all the same: a warning says so.
    status, text, err = run(["compose", str(tmp_path / "in"), str(tmp_path / "out2"), "--checkpoint",
                             str(checkpoints / "composer.keras"), "--primer-seconds", "1", "--seconds", "3",
                             "--max-tokens", "4"], capsys)
    assert status in (0, 1)  # (the untrained composer may write no note at all: then that file fails)
    assert "the new music stopped at" in caplog.text and "--max-tokens 4 events were used up" in caplog.text


def test_synthesize_sizes_a_piece_from_its_notes_before_building_its_roll(checkpoints, tmp_path, capsys):
    import tracemalloc

    inputs, out = tmp_path / "in", tmp_path / "out"
    make_midi(inputs / "late.mid", [(0.1, 0.5, 60, 80), (36_000.0, 36_000.5, 64, 80)])  # 74 bytes, 10 h
    make_midi(inputs / "later.mid", [(0.1, 0.5, 60, 80), (3_600_000.0, 3_600_000.5, 64, 80)])  # 1000 h
    assert (inputs / "late.mid").stat().st_size < 100
    tracemalloc.start()
    try:
        status, text, _ = run(["synthesize", str(inputs), str(out), "--checkpoint",
                               str(checkpoints / "synthesizer.keras")], capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 1
    assert failures(text)["late.mid"].startswith("the piece lasts 36002 s (sustain pedal included), more than the "
                                                 "1200 s allowed")
    assert "ticks in (" in failures(text)["later.mid"] and "refused before reading it" in failures(text)["later.mid"]
    assert peak < 600 * 2**20, f"{peak / 2**20:.0f} MiB"  # the roll alone would take 6 GB, the 1000 h file 13 GB
    assert not list(out.rglob("*.wav"))


def test_synthesized_audio_is_checked_before_it_is_written(checkpoints, tmp_path, capsys, monkeypatch, caplog):
    from stages.io.audio import checked_output, encode_wav
    from synthesize.synthesizer import Synthesizer

    with pytest.raises(ValueError, match="NaN or infinite"):
        encode_wav(np.array([0.0, np.nan], np.float32))  # would be written as full scale
    loud = checked_output(np.array([0.5, -3.0, 2.0], np.float32))
    assert np.max(np.abs(loud)) == pytest.approx(0.99)
    inputs, out = tmp_path / "in", tmp_path / "out"
    rendered = {60: np.full(16_000, np.nan, np.float32), 61: np.zeros(16_000, np.float32),
                62: np.full(16_000, 1e3, np.float32)}  # by the pitch of the file's one note
    for name, pitch in (("nan", 60), ("silent", 61), ("loud", 62)):
        make_midi(inputs / f"{name}.mid", [(0.1, 0.5, pitch, 80)])
    monkeypatch.setattr(Synthesizer, "render", lambda self, sequence, progress=None: rendered[sequence.notes[0].pitch])
    status, text, _ = run(["synthesize", str(inputs), str(out), "--checkpoint",
                             str(checkpoints / "synthesizer.keras")], capsys)
    assert status == 1
    assert failures(text) == {"nan.mid": "the rendered audio holds 16,000 NaN or infinite samples of 16,000: "
                                         "not written",
                              "silent.mid": "the rendered audio is silent: not written"}
    audio, _ = soundfile.read(out / "loud.wav")
    assert np.max(np.abs(audio)) == pytest.approx(0.99, abs=1e-3) and "beyond full scale" in caplog.text
    assert_clean(out)


def test_transcribe_reads_headers_first_and_odd_names_work(checkpoints, tmp_path, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    # 96 KB of 16-bit samples that the header says were taken at 1 Hz: 13 hours.
    soundfile.write(inputs / "one-hertz.wav", (tone(3.0) * 0.5), 1, subtype="PCM_16")
    huge = tone(1.0)
    huge[::100] = 1e30
    soundfile.write(inputs / "huge.wav", huge, 16_000, subtype="FLOAT")
    soundfile.write(inputs / "long.wav", tone(3.0), 16_000)
    odd = Path(os.fsdecode(os.fsencode(str(inputs)) + b"/caf\xe9 \xff.wav"))  # not UTF-8
    soundfile.write(os.fsencode(odd), tone(1.0), 16_000)
    before = snapshot(inputs)
    status, text, _ = run(["transcribe", str(inputs), str(out), "--checkpoint", str(checkpoints / "transcriber.keras"),
                           "--max-seconds", "2"], capsys)
    assert status == 1
    found = failures(text)
    assert set(found) == {"one-hertz.wav", "huge.wav", "long.wav"}
    assert "sample rate of 1 Hz: not a recording" in found["one-hertz.wav"]
    assert "far beyond full scale" in found["huge.wav"]
    assert found["long.wav"] == ("the recording lasts 3 s (its header: 48,000 frames at 16,000 Hz), more than the "
                                 "2 s allowed (--max-seconds)")
    assert [p.name for p in out.glob("*.midi")] == [odd.with_suffix(".midi").name]
    assert snapshot(inputs) == before
    assert_clean(out)


class Copy:
    """A toy stage for the link and name policy: .txt -> .out, the bytes as they are."""

    @staticmethod
    def stage():
        from stages.contract import Stage

        class CopyStage(Stage):
            name = "copy"
            input_suffixes = (".txt",)
            output_suffixes = {"out": ".out"}

            def process(self, job, temporaries):
                temporaries["out"].write_bytes(job.source.read_bytes())

        return CopyStage()


def test_links_are_followed_named_by_the_link_and_reported_when_broken(tmp_path):
    elsewhere, inputs, out = tmp_path / "elsewhere", tmp_path / "in", tmp_path / "out"
    elsewhere.mkdir()
    (elsewhere / "target.txt").write_text("outside")
    inputs.mkdir()
    (inputs / "here.txt").write_text("inside")
    (inputs / "outside.txt").symlink_to(elsewhere / "target.txt")  # a file outside the input folder
    (inputs / "again.txt").symlink_to(elsewhere / "target.txt")  # two links to one file: two inputs
    (inputs / "dangling.txt").symlink_to(tmp_path / "nosuch.txt")
    (inputs / "loop.txt").symlink_to(inputs / "loop.txt")
    (inputs / "folder.txt").symlink_to(elsewhere)  # a link to a folder named like an input: not one
    (inputs / "sub").mkdir()
    (inputs / "sub" / "deep.txt").write_text("deep")
    (out / "sub-elsewhere").mkdir(parents=True)
    (out / "sub").symlink_to(out / "sub-elsewhere" / ".." / ".." / "elsewhere")  # a link out of OUT
    (out / "here.out").mkdir()  # a folder where an output goes: in the way, not done
    report = Copy.stage().run(inputs, out, progress=False)
    assert (out / "outside.out").read_text() == "outside" and (out / "again.out").read_text() == "outside"
    reasons = {Path(e.path).name: e.reason for e in report.failed}
    assert set(reasons) == {"dangling.txt", "loop.txt", "deep.txt", "here.txt"}
    assert reasons["dangling.txt"].startswith("broken link: its target")
    assert reasons["loop.txt"].startswith("the link loops")
    assert "outside the output folder" in reasons["deep.txt"]
    assert reasons["here.txt"].startswith("a folder is in the way of its output")
    assert not (elsewhere / "deep.out").exists()
    # A link given by name: processed, named by the link.
    report = Copy.stage().run([inputs / "again.txt"], tmp_path / "single", progress=False)
    assert report.ok and (tmp_path / "single" / "again.out").read_text() == "outside"


def test_a_link_given_to_transcribe_by_name_is_transcribed(checkpoints, tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    soundfile.write(tmp_path / "elsewhere" / "take.wav", tone(1.0), 16_000)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "linked.wav").symlink_to(tmp_path / "elsewhere" / "take.wav")
    status, text, _ = run(["transcribe", str(tmp_path / "in" / "linked.wav"), str(tmp_path / "out"),
                           "--checkpoint", str(checkpoints / "transcriber.keras")], capsys)
    assert status == 0, text
    assert (tmp_path / "out" / "linked.midi").is_file()


def test_a_failed_line_prints_a_name_that_is_not_utf8(tmp_path):
    from stages.contract import FileError, StageReport

    report = StageReport("copy", str(tmp_path), failed=[FileError(os.fsdecode(b"/in/caf\xe9.txt"), "bad")])
    assert "FAILED /in/caf\\xe9.txt: bad" in report.summary()
    report.summary().encode("utf-8")  # printable on any terminal


def test_benchmark_names_an_unreadable_estimate_and_scores_the_rest(tmp_path, capsys):
    refs, est = tmp_path / "refs", tmp_path / "est"
    for name in ("a", "b"):
        make_midi(refs / f"{name}.mid", phrase(7, 2.0))
    make_midi(est / "a.mid", phrase(7, 2.0))
    write_bytes(est / "b.mid", b"MThd not MIDI")
    status, text, _ = run(["benchmark", str(refs), f"ours={est}", "--out", str(tmp_path / "r")], capsys)
    assert status == 1
    assert "ours: 1 pieces scored, 0 without an estimate, 1 failed" in text
    assert "not a readable MIDI file" in failures(text)["b.mid"]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [p["piece"] for p in report["systems"]["ours"]["pieces"]] == ["a"]
    # Estimates that share no name with the references: an error, not an empty report.
    (tmp_path / "other").mkdir()
    make_midi(tmp_path / "other" / "zzz.mid", phrase(7, 2.0))
    status, _, err = run(["benchmark", str(refs), str(tmp_path / "other"), "--out", str(tmp_path / "r2")], capsys)
    assert status == 2
    assert_one_line_error(err, "is named after a reference piece")
    assert not (tmp_path / "r2").exists()


def test_metadata_is_read_as_excel_and_pandas_write_it(tmp_path, caplog):
    import csv

    from maestro.metadata import FIELDS, read_metadata

    rows = [row("train", "2018/a.wav", "2018/a.midi"), row("train", "2018/a.wav", "2018/a.midi"),
            {**row("test", "2018/b.wav", "2018/b.midi"), "year": "unknown"}, row("test", "2018/c.wav", "2018/c.midi")]
    path = tmp_path / "maestro-v3.0.0.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # Excel's "CSV UTF-8": a byte-order mark
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    problems: list = []
    records = read_metadata(path, problems, unique=True)  # as the batch tools read it
    assert [r.audio_filename for r in records] == ["2018/a.wav", "2018/c.wav"]
    assert problems == [["2018/b.wav", "maestro-v3.0.0.csv, row 4: year is not a whole number: 'unknown'"]]
    assert "lists 2018/a.wav twice (row 2 and row 3): the repeat is ignored" in caplog.text
    with pytest.raises(ValueError, match="row 4: year is not a whole number"):
        read_metadata(path)


def test_retranscribe_reports_bad_rows_and_transcribes_the_good_recording(rendered, checkpoints, tmp_path, capsys,
                                                                          caplog):
    from maestro.metadata import Dataset

    root = tmp_path / "ds"
    shutil.copytree(rendered, root)
    record = next(r for r in Dataset.open(root).records if r.split == "test")
    duplicate = row("test", record.audio_filename, record.midi_filename)
    write_rows(root, [duplicate, {**row("test", "2018/x.wav", record.midi_filename), "year": "n/a"}])
    metadata = next(root.glob("maestro-v*.csv"))
    metadata.write_bytes(b"\xef\xbb\xbf" + metadata.read_bytes())  # a BOM, as Excel saves it
    status, text, err = run(["maestro", "retranscribe", str(root), str(tmp_path / "rt"), "--splits", "test",
                             "--checkpoint", str(checkpoints / "transcriber.keras"),
                             "--direct_num_workers=1", "--direct_running_mode=in_memory"], capsys)
    assert status == 1, text + err
    assert "1 of 2 recordings transcribed, 1 failed" in text
    assert "year is not a whole number: 'n/a'" in text
    assert (tmp_path / "rt" / Path(record.audio_filename).with_suffix(".midi")).is_file()
    assert f"lists {record.audio_filename} twice" in caplog.text
    assert not [line for line in err.splitlines() if line.startswith("INFO")]


def test_full_names_why_a_file_cannot_be_read_and_lists_only_what_it_wrote(tmp_path):
    from flows.full import summary_lines
    from stages.io.normalize import NormalizeAudioStage

    inputs = tmp_path / "in"
    inputs.mkdir()
    write_bytes(inputs / "text.mp3", b"this is not audio at all\n" * 20)
    soundfile.write(inputs / "one-hertz.wav", tone(3.0), 1, subtype="PCM_16")
    report = NormalizeAudioStage().run(inputs, tmp_path / "audio", progress=False)
    reasons = {Path(e.path).name: e.reason for e in report.failed}
    assert reasons["text.mp3"].startswith("cannot decode audio (libsndfile: not a format it reads")  # no NoBackendError
    assert "sample rate of 1 Hz" in reasons["one-hertz.wav"]
    summary = {"stages": {"transcribe": report.to_dict()}, "stage_seconds": {}, "output_dir": str(tmp_path)}
    assert summary_lines(summary)[-1] == f"-> {tmp_path} (summary.json)"  # the report stage did not run


def test_an_interrupt_still_names_the_files_that_had_failed(checkpoints, tmp_path, capsys, monkeypatch):
    from transcribe.stage import TranscribeStage

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    write_bytes(inputs / "a-empty.wav", b"")
    soundfile.write(inputs / "b-good.wav", tone(1.0), 16_000)
    process = TranscribeStage.process

    def interrupted_on_the_good_one(self, job, temporaries):
        if job.source.name == "b-good.wav":
            raise KeyboardInterrupt
        return process(self, job, temporaries)

    monkeypatch.setattr(TranscribeStage, "process", interrupted_on_the_good_one)
    checkpoint = str(checkpoints / "transcriber.keras")
    status, text, err = run(["transcribe", str(inputs), str(out), "--checkpoint", checkpoint], capsys)
    assert status == 130 and "interrupted" in err
    assert text.splitlines() == [f"transcribe: FAILED {inputs / 'a-empty.wav'}: empty file (0 bytes)"]


def test_a_command_leaves_no_temporary_files_behind(tmp_path):
    import argparse
    import tempfile

    from pipeline import run_command

    made = []

    def command(args):
        with tempfile.NamedTemporaryFile(prefix="__autograph_generated_file", suffix=".py", delete=False) as handle:
            made.append(Path(handle.name))  # as TensorFlow's autograph does, and never removes
        return 0

    before = tempfile.gettempdir()
    assert run_command(argparse.Namespace(run=command, verbose=False)) == 0
    assert made and not made[0].exists() and not made[0].parent.exists()
    assert tempfile.gettempdir() == before


def test_full_keeps_prefect_results_under_the_run_folder(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH

    from flows.full import results_under

    monkeypatch.delenv("PREFECT_RESULTS_LOCAL_STORAGE_PATH", raising=False)
    monkeypatch.delenv("PREFECT_LOCAL_STORAGE_PATH", raising=False)
    with results_under(tmp_path / "run"):
        assert PREFECT_RESULTS_LOCAL_STORAGE_PATH.value() == (tmp_path / "run" / ".prefect-cache").resolve()


def test_beam_workers_are_quiet_unless_verbose(capfd):
    import logging

    from maestro.preprocess import quiet_workers

    root = logging.getLogger()
    level = root.level
    try:
        for verbose, heard in ((False, ""), (True, "INFO:__main__:Logging handler created.\n")):
            root.setLevel(logging.DEBUG if verbose else logging.WARNING)
            with quiet_workers():
                os.write(2, b"INFO:__main__:Logging handler created.\n")  # as a worker process writes it
            assert capfd.readouterr().err == heard
    finally:
        root.setLevel(level)
