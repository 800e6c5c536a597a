"""Beam preprocessing: shards that decode back to the same audio and notes, deterministic,
bad files counted and reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from maestro import preprocess, tfrecord
from maestro.examples import decode_composition, decode_transcription
from maestro.metadata import Dataset
from stages.io.audio import load_audio
from stages.io.midi import apply_sustain, read_note_sequence

IN_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


def read_shards(folder: Path, split: str) -> list[bytes]:
    records = []
    for path in sorted(folder.glob(f"{split}.tfrecord-*")):
        with path.open("rb") as handle:
            records += list(tfrecord.read_records(handle))
    return records


@pytest.mark.slow
def test_spans_decode_back_to_the_recording_and_its_notes(rendered, preprocessed):
    dataset = Dataset.open(rendered)
    for record in dataset.records:
        spans = sorted((decode_transcription(d) for d in read_shards(preprocessed / "transcription", record.split)),
                       key=lambda s: s.start_seconds)
        spans = [s for s in spans if s.id.startswith(record.audio_filename + "@")]
        assert len(spans) >= 2  # 4 s recordings cut into spans of at most 2.5 s
        audio = load_audio(dataset.audio_path(record))
        np.testing.assert_array_equal(np.concatenate([s.audio for s in spans]), audio)
        assert all(s.end_seconds - s.start_seconds <= 2.5 + 1e-6 for s in spans)
        # Every sustain-extended note starts in exactly one span, at its true time.
        expected = sorted((round(n.start_time, 4), n.pitch, n.velocity)
                          for n in apply_sustain(read_note_sequence(dataset.midi_path(record))).notes)
        found = sorted((round(s.start_seconds + n.start_time, 4), n.pitch, n.velocity)
                       for s in spans for n in s.sequence.notes if n.start_time >= 0)
        assert found == expected
        for span in spans:
            assert all(n.end_time <= span.end_seconds - span.start_seconds + 1e-6 for n in span.sequence.notes)


@pytest.mark.slow
def test_composition_examples_hold_whole_performances(rendered, preprocessed):
    dataset = Dataset.open(rendered)
    examples = {e.id: e for split in ("train", "validation", "test")
                for e in map(decode_composition, read_shards(preprocessed / "composition", split))}
    assert set(examples) == {r.midi_filename for r in dataset.records}
    for record in dataset.records:
        example = examples[record.midi_filename]
        assert (example.split, example.composer, example.year) == (record.split, record.canonical_composer, record.year)
        assert example.sequence == read_note_sequence(dataset.midi_path(record))


@pytest.mark.slow
def test_output_is_deterministic_and_bad_files_are_reported(rendered, tmp_path):
    broken = tmp_path / "dataset"
    shutil.copytree(rendered, broken)
    dataset = Dataset.open(broken)
    victim = dataset.records[0]
    dataset.audio_path(victim).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    config = preprocess.PreprocessConfig(max_shards=2)
    first = preprocess.run(str(broken), str(tmp_path / "one"), config, IN_PROCESS)
    second = preprocess.run(str(broken), str(tmp_path / "two"), config, IN_PROCESS)
    assert first == second == json.loads((tmp_path / "one" / "preprocess.json").read_text())
    assert first["failed_count"] == 1 and first["failed"][0][0] == victim.audio_filename
    assert "cannot decode audio" in first["failed"][0][1]
    total = sum(split["recordings"] for split in first["splits"].values())
    assert total == 3 and sum(s["composition_examples"] for s in first["splits"].values()) == 4
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    for path in files:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes()
    assert not [p for p in files if "partial" in p.name]


def test_a_shard_written_twice_at_once_ends_whole(rendered, tmp_path):
    """An engine may run a shard's task again while the first run still writes (a worker it took
    for lost): neither run truncates or renames away the other's temporary, and the shard left is
    the one a single run writes."""
    records = preprocess.load_records(str(rendered))[:1]
    config = preprocess.PreprocessConfig(min_seconds=1.0, max_seconds=2.5)
    element = ((records[0].split, 0), records)

    def shards(out):
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    alone = preprocess.WriteShard(str(rendered), str(tmp_path / "alone"), config, {records[0].split: 1})
    list(alone.process(element))
    writer = preprocess.WriteShard(str(rendered), str(tmp_path / "twice"), config, {records[0].split: 1})

    class RunAgainMeanwhile(list):
        """The shard's records; reading them (the first run's files are open by then) runs it again."""

        def __iter__(self):
            list(writer.process(element))
            return super().__iter__()

    list(writer.process(((records[0].split, 0), RunAgainMeanwhile(records))))
    assert shards(tmp_path / "twice") == shards(tmp_path / "alone") and len(shards(tmp_path / "alone")) == 2


def test_tfrecord_framing_matches_tensorflow(tmp_path):
    import tensorflow as tf

    path = tmp_path / "x.tfrecord"
    with path.open("wb") as handle:
        tfrecord.write_records(handle, [b"", b"abc", bytes(range(256)) * 40])
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == [b"", b"abc", bytes(range(256)) * 40]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="corrupt or truncated"), path.open("rb") as handle:
        list(tfrecord.read_records(handle))
