"""`w2m2w maestro render`: the v3 layout, resumable, deterministic, bad files reported."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile

from maestro.augmentation import Augmentation, file_rng, render_midi
from maestro.metadata import Dataset, read_metadata
from maestro.recording import add_noise
from maestro.render import read_soundfonts, render_dataset
from stages.io.midi import apply_sustain, read_note_sequence
from tests.conftest import make_midi, phrase


@pytest.mark.slow
def test_layout_metadata_and_audio(rendered, midi_folder):
    dataset = Dataset.open(rendered)
    records = {r.midi_filename: r for r in dataset.records}
    assert set(records) == {"2018/Chopin--Etude--A01.midi", "2011/Chopin--Etude--B02.midi",
                            "2018/Bach--Fugue--C03.midi", "2011/Liszt--Sonata--D04.midi"}
    assert read_metadata(rendered / "maestro-v3.0.0.json") == list(dataset.records)
    first = records["2018/Chopin--Etude--A01.midi"]
    assert (first.split, first.canonical_composer, first.canonical_title) == ("train", "Frédéric Chopin", "Etude")
    assert records["2011/Liszt--Sonata--D04.midi"].split == "test"
    for record in dataset.records:
        assert dataset.midi_path(record).read_bytes().startswith(b"MThd")
        info = soundfile.info(str(dataset.audio_path(record)))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.duration == pytest.approx(record.duration, abs=1e-3)
        # Audio lasts to the last (pedal-extended) note plus the release tail, and is not silent.
        end = apply_sustain(read_note_sequence(dataset.midi_path(record))).total_time
        assert end < record.duration <= end + 1.0 + 1e-3
        audio, _ = soundfile.read(dataset.audio_path(record))
        assert 0.01 < np.abs(audio).max() <= 1.0


@pytest.mark.slow
def test_renders_csv_names_the_soundfont_each_file_was_rendered_with(rendered):
    dataset = Dataset.open(rendered)
    soundfonts = read_soundfonts(rendered)
    assert set(soundfonts) == {r.audio_filename for r in dataset.records}
    plain = [r for r in dataset.records if r.split != "train"]  # no augmentation: the soundfont alone
    assert plain
    for record in plain:
        audio, _ = soundfile.read(dataset.audio_path(record), dtype="float32")
        for soundfont in ("FluidR3_GM", "TimGM6mb"):
            again = render_midi(dataset.midi_path(record), Augmentation(soundfont), 16000, np.random.default_rng(0),
                                record.duration)[: len(audio)]
            same = np.abs(again - audio).max() < 1e-3
            assert same == (soundfont == soundfonts[record.audio_filename]), (record.audio_filename, soundfont)
    assert read_soundfonts(rendered / "2018") == {}  # no manifest (the real MAESTRO): nothing to say


@pytest.mark.slow
def test_rerun_skips_finished_files_and_renders_deterministically(rendered, midi_folder, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in rendered.rglob("*.wav")}
    report = render_dataset(midi_folder, rendered, midi_folder / "split.csv", progress=False)
    assert len(report.skipped) == 4 and not report.written
    assert {p: p.stat().st_mtime_ns for p in rendered.rglob("*.wav")} == before
    # A fresh render of one file gives the same bytes (per-file seeded augmentation).
    again = tmp_path / "again"
    render_dataset(midi_folder, again, midi_folder / "split.csv", splits=("train",), progress=False)
    for wav in again.rglob("*.wav"):
        assert wav.read_bytes() == (rendered / wav.relative_to(again)).read_bytes()


def test_without_split_file_everything_is_train_and_bad_files_are_reported(tmp_path):
    source = tmp_path / "in"
    make_midi(source / "good.mid", phrase(7, 2.0))
    (source / "sub").mkdir()
    (source / "sub" / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06not midi at all")
    make_midi(source / "empty.midi", [])
    report = render_dataset(source, tmp_path / "out", year=2020, progress=False)
    assert [r.split for r in read_metadata(tmp_path / "out" / "maestro-v3.0.0.csv")] == ["train"]
    reasons = {e.path.split("/")[-1]: e.reason for e in report.failed}
    assert set(reasons) == {"corrupt.mid", "empty.midi"}
    assert "MIDI" in reasons["corrupt.mid"] and "no notes" in reasons["empty.midi"]
    assert sorted(p.name for p in (tmp_path / "out" / "2020").iterdir()) == ["good.midi", "good.wav"]


@pytest.mark.slow
def test_dotted_folder_names_keep_every_file_apart(tmp_path):
    source = tmp_path / "in" / "Schubert" / "Impromptu_op.90_D.899"
    for number in (3, 4):
        make_midi(source / str(number) / "Hou06M.mid", phrase(number, 1.0))
    report = render_dataset(tmp_path / "in", tmp_path / "out", progress=False)
    assert report.ok and len(report.written) == 2
    assert sorted(r.audio_filename for r in read_metadata(tmp_path / "out" / "maestro-v3.0.0.csv")) == [
        "2018/Schubert--Impromptu_op.90_D.899--3--Hou06M.wav", "2018/Schubert--Impromptu_op.90_D.899--4--Hou06M.wav"]


def test_soundfonts_sound_different_and_augmentation_is_seeded(tmp_path):
    draws = [Augmentation.draw(file_rng(0, f"f{i}"), ("FluidR3_GM", "TimGM6mb"), augment=True) for i in range(40)]
    assert {d.soundfont for d in draws} == {"FluidR3_GM", "TimGM6mb"}
    assert len({d.gain_db for d in draws}) == 40 and any(d.room for d in draws) and any(d.noise_snr_db for d in draws)
    assert draws[3] == Augmentation.draw(file_rng(0, "f3"), ("FluidR3_GM", "TimGM6mb"), augment=True)
    assert Augmentation.draw(file_rng(0, "x"), ("TimGM6mb",), augment=False) == Augmentation("TimGM6mb")


def test_noise_is_added_at_the_requested_snr():
    rng = np.random.default_rng(0)
    signal = np.sin(np.linspace(0, 2000, 64000)).astype(np.float32) * 0.3
    for color in ("white", "pink"):
        noisy = add_noise(signal, 30.0, color, rng)
        noise = noisy - signal
        snr = 20 * np.log10(np.sqrt(np.mean(signal**2)) / np.sqrt(np.mean(noise**2)))
        assert snr == pytest.approx(30.0, abs=0.1)


def test_missing_soundfont_fails_before_any_file(tmp_path, midi_folder):
    with pytest.raises(FileNotFoundError, match="soundfont"):
        render_dataset(midi_folder, tmp_path / "o", soundfonts=("NoSuchFont",), progress=False)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.wav"))
    assert shutil.which("fluidsynth")
