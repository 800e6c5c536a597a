"""Shared fixtures: tiny MIDI files and a tiny rendered MAESTRO made by the tests themselves."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_midi(path: Path, notes: list[tuple[float, float, int, int]],
              pedal: list[tuple[float, int]] = ()) -> Path:
    """Write a piano MIDI file of (onset, offset, pitch, velocity) notes and (time, value) CC 64."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(v, p, s, e) for s, e, p, v in notes]
    piano.control_changes = [pretty_midi.ControlChange(64, value, time) for time, value in pedal]
    midi.instruments.append(piano)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


def phrase(seed: int, seconds: float, start: float = 0.1) -> list[tuple[float, float, int, int]]:
    """A random monophonic-ish phrase with short gaps, lasting about `seconds`."""
    rng = np.random.default_rng(seed)
    notes, time = [], start
    while time < seconds - 0.5:
        length = float(rng.uniform(0.15, 0.6))
        notes.append((time, time + length, int(rng.integers(48, 84)), int(rng.integers(40, 110))))
        time += length + float(rng.uniform(0.02, 0.3))
    return notes


@pytest.fixture(scope="session")
def midi_folder(tmp_path_factory) -> Path:
    """Four short performances in nested folders, with a split CSV (ASAP's columns)."""
    root = tmp_path_factory.mktemp("midi")
    files = {
        "midi/Chopin/Etude/A01.mid": ("train", "Chopin", "Etude", 0),
        "midi/Chopin/Etude/B02.mid": ("train", "Chopin", "Etude", 1),
        "midi/Bach/Fugue/C03.mid": ("validation", "Bach", "Fugue", 2),
        "midi/Liszt/Sonata/D04.mid": ("test", "Liszt", "Sonata", 3),
    }
    with (root / "split.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "composer", "title", "midi_performance", "maestro_midi_performance"])
        for relative, (split, composer, title, seed) in files.items():
            make_midi(root / relative, phrase(seed, 4.0), pedal=[(1.0, 100), (1.8, 0)])
            maestro_name = f"2011/{Path(relative).stem}.midi" if seed % 2 else ""
            writer.writerow([split, composer, title, relative, maestro_name])
    return root


@pytest.fixture(scope="session")
def rendered(midi_folder, tmp_path_factory) -> Path:
    """The MIDI folder rendered into a MAESTRO-v3 layout."""
    from maestro.render import render_dataset

    out = tmp_path_factory.mktemp("dataset")
    report = render_dataset(midi_folder, out, midi_folder / "split.csv", workers=1, progress=False)
    assert report.ok, report.summary()
    return out


@pytest.fixture(scope="session")
def preprocessed(rendered, tmp_path_factory) -> Path:
    """The rendered dataset through the Beam pipeline (a TestPipeline), spans of at most 2.5 s."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing import test_pipeline
    from apache_beam.testing.util import assert_that

    from maestro import preprocess

    out = tmp_path_factory.mktemp("tfrecords")
    config = preprocess.PreprocessConfig(min_seconds=1.0, max_seconds=2.5)
    records = preprocess.load_records(str(rendered))
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as pipeline:
        stats = preprocess.build(pipeline, str(rendered), str(out), records, config)

        def check(shards):
            assert sum(s["recordings"] for s in shards) == 4
            assert all(not s["failed"] for s in shards)

        assert_that(stats, check)
    return out


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """Untrained tiny transcriber, composer and synthesizer, saved as .keras."""
    import keras

    from compose.config import ComposerConfig
    from compose.model import build_model as build_composer
    from synthesize.config import SynthesizerConfig
    from synthesize.model import build_model as build_synthesizer
    from transcribe.config import TranscriberConfig
    from transcribe.onsets_frames.model import build_model as build_transcriber

    folder = tmp_path_factory.mktemp("checkpoints")
    keras.utils.set_random_seed(0)
    build_transcriber(TranscriberConfig.tiny()).save(folder / "transcriber.keras")
    build_composer(ComposerConfig.tiny()).save(folder / "composer.keras")
    build_synthesizer(SynthesizerConfig.tiny()).save(folder / "synthesizer.keras")
    return folder


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's test harness (a server on a temporary database), started once for every module
    that runs flows in-process: each start costs a server's start-up and shutdown. Runs stay apart
    because their cache keys name their output folders (flows.tasks.content_key)."""
    from prefect.testing.utilities import prefect_test_harness

    # Seconds on a quiet machine; beside a training run it took 4 to 7 minutes (nice 19, load 9 to 15).
    with prefect_test_harness(server_startup_timeout=900):
        yield


@pytest.fixture
def recordings(rendered, tmp_path):
    """Two 2 s recordings (one as FLAC) with their reference MIDI beside them."""
    import shutil

    import soundfile

    from maestro.metadata import Dataset

    folder = tmp_path / "recordings"
    folder.mkdir()
    dataset = Dataset.open(rendered)
    for i, record in enumerate(dataset.records[:2]):
        audio, rate = soundfile.read(dataset.audio_path(record))
        soundfile.write(folder / f"piece{i}.{'flac' if i else 'wav'}", audio[: rate * 2], rate)
        shutil.copy(dataset.midi_path(record), folder / f"piece{i}.mid")
    return folder
