"""MAESTRO metadata of every version, selection, and paths that must not escape the root."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from maestro.metadata import (
    FIELDS,
    Dataset,
    Record,
    find_metadata,
    join_under,
    read_metadata,
    resolve_under,
    select,
    write_metadata,
)
from stages.contract import InputError
from tests.conftest import SHARED_DATA

RECORDS = [
    Record("Frédéric Chopin", "Etude Op. 10 No. 1", "train", 2004, "2004/a.midi", "2004/a.wav", 120.5),
    Record("Johann Sebastian Bach", "Prelude", "validation", 2006, "2006/b.midi", "2006/b.wav", 60.0),
    Record("Franz Liszt", "Sonata", "test", 2018, "2018/c.midi", "2018/c.wav", 900.25),
    Record("Frédéric Chopin / Franz Liszt", "Chant polonais", "train", 2018, "2018/d.midi", "2018/d.wav", 30.0),
]


def write_v1_v2_json(path, records):
    path.write_text(json.dumps([dataclasses.asdict(r) for r in records]))


def write_csv(path, records):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in records)


def write_v3_json(path, records):
    rows = [dataclasses.asdict(r) for r in records]
    path.write_text(json.dumps({name: {str(i): row[name] for i, row in enumerate(rows)} for name in FIELDS}))


@pytest.mark.parametrize("name,writer", [("maestro-v1.0.0.json", write_v1_v2_json),
                                         ("maestro-v2.0.0.json", write_v1_v2_json),
                                         ("maestro-v2.0.0.csv", write_csv),
                                         ("maestro-v3.0.0.csv", write_csv),
                                         ("maestro-v3.0.0.json", write_v3_json)])
def test_every_version_reads_the_same_records(tmp_path, name, writer):
    writer(tmp_path / name, RECORDS)
    assert read_metadata(tmp_path / name) == RECORDS


def test_v3_json_rows_follow_numeric_index_order(tmp_path):
    rows = [dataclasses.asdict(r) for r in RECORDS] * 3  # 12 rows: "10" must come after "9"
    data = {name: {str(i): row[name] for i, row in enumerate(rows)} for name in FIELDS}
    (tmp_path / "m.json").write_text(json.dumps(data))
    assert read_metadata(tmp_path / "m.json") == RECORDS * 3


def test_write_metadata_is_read_back_in_both_v3_formats(tmp_path):
    csv_path, json_path = write_metadata(tmp_path, RECORDS)
    assert read_metadata(csv_path) == read_metadata(json_path) == RECORDS
    assert find_metadata(tmp_path) == csv_path


def test_find_metadata_prefers_the_newest_version(tmp_path):
    write_v1_v2_json(tmp_path / "maestro-v2.0.0.json", RECORDS[:1])
    write_csv(tmp_path / "maestro-v3.0.0.csv", RECORDS)
    write_v1_v2_json(tmp_path / "maestro-v1.0.0.json", RECORDS[:2])
    assert find_metadata(tmp_path).name == "maestro-v3.0.0.csv"


def test_select_by_split_year_and_composer():
    assert [r.midi_filename for r in select(RECORDS, splits=["train"])] == ["2004/a.midi", "2018/d.midi"]
    assert [r.midi_filename for r in select(RECORDS, years=[2018])] == ["2018/c.midi", "2018/d.midi"]
    assert [r.midi_filename for r in select(RECORDS, composers=["liszt"])] == ["2018/c.midi", "2018/d.midi"]
    chosen = select(RECORDS, splits=["train"], years=[2018], composers=["CHOPIN"])
    assert [r.midi_filename for r in chosen] == ["2018/d.midi"]
    assert select(RECORDS) == RECORDS


@pytest.mark.parametrize("bad", ["../outside.wav", "2004/../../outside.wav", "/etc/passwd"])
def test_paths_escaping_the_root_are_refused(tmp_path, bad):
    with pytest.raises(InputError):
        resolve_under(tmp_path, bad)
    with pytest.raises(InputError):
        join_under("gs://bucket/maestro", bad)


def test_symlink_escaping_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "2004").symlink_to(outside)
    with pytest.raises(InputError):
        resolve_under(root, "2004/a.wav")
    assert resolve_under(root, "2005/./a.wav") == (root / "2005" / "a.wav").resolve()
    assert join_under("gs://bucket/maestro/", "2004/a.wav") == "gs://bucket/maestro/2004/a.wav"


def test_metadata_missing_a_column_is_an_error(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps([{"split": "train"}]))
    with pytest.raises(ValueError, match="lacks"):
        read_metadata(tmp_path / "m.json")


CLIP = SHARED_DATA / "maestro_clip"


@pytest.mark.skipif(not CLIP.is_dir(), reason="shared/data/maestro_clip not present")
@pytest.mark.slow
def test_real_maestro_v2_clip_loads_and_labels_are_cut_to_the_audio():
    from maestro.preprocess import PreprocessConfig, transcription_examples
    from stages.io.audio import load_audio
    from stages.io.midi import read_note_sequence

    dataset = Dataset.open(CLIP)
    (record,) = dataset.select(splits=["train"])
    assert record.year == 2018 and record.canonical_composer == "Alban Berg"
    audio = load_audio(dataset.audio_path(record))  # 48 kHz stereo in the file
    assert audio.shape == (32000,)
    sequence = read_note_sequence(dataset.midi_path(record))
    assert sequence.total_time > 600  # the MIDI is the whole performance
    (span,) = transcription_examples(record, sequence, str(CLIP), PreprocessConfig())
    assert span.end_seconds == pytest.approx(2.0) and len(span.audio) == 32000
    assert span.sequence.notes and all(n.end_time <= 2.0 + 1e-9 for n in span.sequence.notes)
    assert all(n.start_time < 2.0 for n in span.sequence.notes)
    assert np.abs(span.audio).max() > 0.01
