"""The Wave2Midi2Wave loop (flows/maestro_t.py) on the tiny rendered MAESTRO with tiny models:
the transcribed corpus keeps the source's metadata, splits and names and names its transcriber;
every step of the flow writes its outputs; a rerun recomputes nothing; a deleted output is
written again; the ground-truth baseline shares the transcriptions."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil

import keras
import pytest

from maestro.metadata import Dataset

pytestmark = pytest.mark.slow  # Beam re-transcription and training, in Prefect flows

IN_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory):
    """A tiny untrained transcriber with thresholds under its outputs, so that it writes notes."""
    from transcribe.config import TranscriberConfig
    from transcribe.onsets_frames.model import build_model

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("transcriber") / "tiny.keras"
    build_model(dataclasses.replace(TranscriberConfig.tiny(), onset_threshold=0.45, frame_threshold=0.4)).save(path)
    return path


@pytest.fixture(scope="module")
def transcriptions(rendered, transcriber, tmp_path_factory):
    from batch import retranscribe

    out = tmp_path_factory.mktemp("transcriptions")
    summary = retranscribe.run(str(rendered), str(out), str(transcriber), beam_args=IN_PROCESS)
    assert summary["transcribed"] == 4, summary["failed"]
    return out


def files(folder):
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_corpus_keeps_the_sources_metadata_splits_and_names(rendered, transcriber, transcriptions, tmp_path):
    from batch.transcribed_corpus import RECORD, write_corpus
    from stages.contract import content_id

    out = tmp_path / "corpus"
    summary = write_corpus(rendered, transcriptions, out, transcriber)
    source = Dataset.open(rendered)
    assert Dataset.open(out).records == source.records  # the same splits, names, order
    for path in [*rendered.glob("maestro-v*.csv"), *rendered.glob("maestro-v*.json")]:
        assert (out / path.name).read_bytes() == path.read_bytes()
    for record in source.records:  # each performance's MIDI replaced by its recording's transcription
        transcribed = (transcriptions / record.audio_filename).with_suffix(".midi")
        assert (out / record.midi_filename).read_bytes() == transcribed.read_bytes()
        assert transcribed.read_bytes() != (rendered / record.midi_filename).read_bytes()
    assert not list(out.rglob("*.wav"))  # MIDI only
    written = json.loads((out / RECORD).read_text())
    assert written["transcriber"]["sha256_16"] == content_id(transcriber)
    assert written["splits"] == {"train": 2, "validation": 1, "test": 1} and written["missing"] == []
    assert "note/f1" in written["transcription_accuracy"]
    assert len(summary["written"]) == 4 + len(written["metadata"]) + 1

    stamps = files(out)
    assert write_corpus(rendered, transcriptions, out, transcriber)["written"] == []  # a rerun writes nothing
    assert files(out) == stamps


def test_a_v2_dataset_gives_a_v2_corpus(rendered, transcriber, transcriptions, tmp_path):
    """MAESTRO v1/v2 ship one JSON list of records: the corpus keeps it, and the composer reads it."""
    from batch.transcribed_corpus import write_corpus
    from compose.on_maestro import load_split

    source = tmp_path / "v2"
    shutil.copytree(rendered, source, ignore=shutil.ignore_patterns("maestro-v*"))
    records = Dataset.open(rendered).records
    (source / "maestro-v2.0.0.json").write_text(json.dumps([dataclasses.asdict(r) for r in records]))
    write_corpus(source, transcriptions, tmp_path / "corpus", transcriber)
    assert sorted(p.name for p in (tmp_path / "corpus").glob("maestro-v*")) == ["maestro-v2.0.0.json"]
    assert Dataset.open(tmp_path / "corpus").records == records
    pieces, _ = load_split(tmp_path / "corpus", "test")
    assert len(pieces) == 1 and pieces[0].notes


def test_a_recording_without_transcription_is_left_out_of_the_metadata(rendered, transcriber, transcriptions,
                                                                     tmp_path):
    from batch.transcribed_corpus import write_corpus

    partial = tmp_path / "transcriptions"
    shutil.copytree(transcriptions, partial)
    source = Dataset.open(rendered)
    lost = source.records[2]
    (partial / lost.audio_filename).with_suffix(".midi").unlink()
    summary = write_corpus(rendered, partial, tmp_path / "corpus", transcriber)
    assert summary["missing"] == [lost.audio_filename]
    kept = Dataset.open(tmp_path / "corpus").records
    assert kept == tuple(r for r in source.records if r != lost)
    assert not (tmp_path / "corpus" / lost.midi_filename).exists()


def test_the_composer_learns_and_is_scored_on_a_maestro_layout(rendered, checkpoints, tmp_path):
    """compose.on_maestro on the ground truth itself (what --train-on ground-truth trains on)."""
    from compose.config import ComposerConfig
    from compose.on_maestro import load_split, score_split, train_on, training_config
    from stages.io.midi import apply_sustain, read_note_sequence

    source = Dataset.open(rendered)
    pieces, composers = load_split(rendered, "train")
    train_records = source.select(splits=["train"])
    assert [len(p.notes) for p in pieces] == [
        len(apply_sustain(read_note_sequence(source.midi_path(r))).notes) for r in train_records]
    assert composers == ["Chopin", "Chopin"]  # canonical_composer, as ASAP's labels
    tiny = checkpoints / "composer.keras"
    config = training_config("default", steps=3, initial_weights=tiny)
    assert (config.num_layers, config.model_dim) == (ComposerConfig.tiny().num_layers, ComposerConfig.tiny().model_dim)
    assert (config.sequence_length, config.decay_steps) == (ComposerConfig.default().sequence_length, 3)
    best = train_on(rendered, tmp_path / "composer", training_config("tiny", steps=2), 2, seed=0)
    assert best.is_file()
    scores = score_split(best, rendered, "test", chunk_length=32, raw_only=True)
    assert scores["pieces"] == 1 and scores["chunk_tokens"] == 32 and "nll_per_event_in_grammar" not in scores
    low, high = scores["nll_per_event_interval_95"]
    assert low <= scores["nll_per_event"] <= high


def test_a_transcription_folder_holds_one_transcribers_work(transcriber, checkpoints, tmp_path):
    from batch.transcribed_corpus import claim_transcriptions

    folder = tmp_path / "transcription"
    first = claim_transcriptions(folder, transcriber)
    assert claim_transcriptions(folder, transcriber) == first  # the same transcriber goes on
    for other, note_ends in ((checkpoints / "transcriber.keras", True), (transcriber, False)):
        with pytest.raises(ValueError, match="another transcriber"):
            claim_transcriptions(folder, other, note_ends)


def test_the_loop_writes_every_step_and_a_rerun_recomputes_nothing(prefect_harness, rendered, transcriber, checkpoints,
                                                                   tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.maestro_t import maestro_t

    out = tmp_path / "run"
    kwargs = dict(dataset=rendered, output_dir=out, transcriber=transcriber, composer_config="tiny", steps=2,
                  from_checkpoint=checkpoints / "composer.keras", beam_args=IN_PROCESS)
    summary = maestro_t(**kwargs)
    source = Dataset.open(rendered)
    for record in source.records:
        assert (out / "transcription" / record.audio_filename).with_suffix(".midi").is_file()
        assert (out / "corpus" / record.midi_filename).is_file()
    assert Dataset.open(out / "corpus").records == source.records
    assert (out / "transcription" / "transcriber.json").is_file()
    assert (out / "composer" / "best.keras").is_file() and (out / "composer" / "history.csv").is_file()
    evaluation = json.loads((out / "evaluation.json").read_text())
    for name in ("ground_truth", "transcribed"):
        assert evaluation[name]["pieces"] == 1 and evaluation[name]["nll_per_event"] > 0
    record = json.loads((out / "maestro-t.json").read_text())
    assert record["transcriber"]["sha256_16"] == summary["transcriber"]["sha256_16"]
    assert record["composer"]["steps"] == 2 and record["composer"]["from"] == str(checkpoints / "composer.keras")
    assert record["evaluation"] == evaluation
    card = (out / "model-card.md").read_text()
    assert summary["transcriber"]["sha256_16"] in card and str(evaluation["transcribed"]["nll_per_event"]) in card
    assert set(summary["step_seconds"]) == {"retranscribe", "corpus", "train", "evaluate", "card"}

    stamps = files(out)
    state = maestro_t(**kwargs, return_state=True)
    assert state.is_completed()
    assert files(out) == stamps  # nothing recomputed, nothing rewritten
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    assert len(runs) == 5 and all(run.state.name == "Cached" for run in runs)

    (out / "evaluation.json").unlink()  # a deleted output is written again, from the same model
    maestro_t(**kwargs)
    assert json.loads((out / "evaluation.json").read_text()) == evaluation
    assert (out / "composer" / "best.keras").stat().st_mtime_ns == stamps[(out / "composer" / "best.keras")
                                                                         .relative_to(out)]

    # The baseline: the same loop trained on the ground truth, sharing the first run's transcriptions.
    transcribed = {p: p.stat().st_mtime_ns for p in (out / "transcription").rglob("*.midi")}
    baseline = maestro_t(**{**kwargs, "output_dir": tmp_path / "baseline", "transcriptions": out / "transcription",
                            "train_on": "ground-truth"})
    assert {p: p.stat().st_mtime_ns for p in (out / "transcription").rglob("*.midi")} == transcribed
    assert not (tmp_path / "baseline" / "transcription").exists()
    assert baseline["composer"]["trained_on"] == "ground-truth"
    assert baseline["transcriber"] == summary["transcriber"]
    assert "ground-truth MIDI" in (tmp_path / "baseline" / "model-card.md").read_text()


def test_the_command_and_the_deployment(monkeypatch, rendered, tmp_path):
    import pipeline
    from flows import maestro_t as module
    from flows.deployments import deployments

    assert "maestro-t" in [d.name for d in deployments()]
    seen = {}

    def fake_flow(**parameters):
        seen.update(parameters)
        return {"corpus": {"records": 4, "splits": {"test": 1}, "missing": []}, "transcriber": {"sha256_16": "x"},
                "evaluation": {"split": "test", **{name: {"nll_per_event": 1.0, "nll_per_event_interval_95": [0.9, 1.1],
                                                          "pieces": 1} for name in ("ground_truth", "transcribed")}},
                "transcription_failed": []}

    monkeypatch.setattr(module, "maestro_t", fake_flow)
    monkeypatch.setattr("flows.server.prefect_api", contextlib.nullcontext)  # no server: the flow is faked
    assert pipeline.main(["maestro-t", str(rendered), str(tmp_path / "run"), "--composer-config", "tiny",
                          "--steps", "3", "--chunk-length", "128", "--train-on", "ground-truth",
                          "--direct_num_workers=1"]) == 0
    assert seen["composer_config"] == "tiny" and seen["steps"] == 3 and seen["chunk_length"] == 128
    assert seen["train_on"] == "ground-truth"
    assert "--direct_num_workers=1" in seen["beam_args"] and seen["from_checkpoint"] is None
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["corpus"]["records"] == 4
    seen.clear()
    (tmp_path / "empty").mkdir()
    assert pipeline.main(["maestro-t", str(tmp_path / "empty"), str(tmp_path / "run2")]) == 2  # not MAESTRO
    assert seen == {}  # refused before the flow ran
