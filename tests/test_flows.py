"""The Prefect flow with real parts and tiny models: every stage's outputs, the report, and a
rerun with the same inputs that recomputes nothing."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # Prefect's test harness (a server) running the whole flow


def test_full_flow_writes_every_stage_and_a_rerun_is_cached(prefect_harness, checkpoints, recordings, tmp_path):
    from flows.full import wave2midi2wave

    out = tmp_path / "run"
    kwargs = dict(input_dir=recordings, output_dir=out, seconds=1.0, primer_seconds=1.0,
                  transcriber=checkpoints / "transcriber.keras", composer=checkpoints / "composer.keras",
                  synthesizer=checkpoints / "synthesizer.keras",
                  beam_args=["--direct_num_workers=1", "--direct_running_mode=in_memory"])
    summary = wave2midi2wave(**kwargs)
    assert sorted(p.name for p in (out / "audio").glob("*.wav")) == ["piece0.wav", "piece1.wav"]
    assert sorted(p.name for p in (out / "transcription").glob("*.midi")) == ["piece0.midi", "piece1.midi"]
    assert sorted(p.name for p in (out / "composition").glob("*.midi")) == ["piece0.midi", "piece1.midi"]
    assert sorted(p.name for p in (out / "composition").glob("*.png")) == ["piece0.png", "piece1.png"]
    assert sorted(p.name for p in (out / "synthesis").glob("*.wav")) == ["piece0.wav", "piece1.wav"]
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"transcription_vs_reference", "composer_nll_on_transcriptions", "round_trip"}
    for measure in ("transcription", "round-trip"):
        pieces = json.loads((out / "reports" / measure / "report.json").read_text())
        assert [len(s["pieces"]) for s in pieces["systems"].values()] == [2]
        assert (out / "reports" / measure / "report.html").read_text().count("data:image/png;base64") >= 2
    assert set(summary["stage_seconds"]) == {"preprocess", "transcribe", "finetune-composer", "compose", "synthesize",
                                             "report"}
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    state = wave2midi2wave(**kwargs, return_state=True)
    assert state.is_completed()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps  # nothing recomputed
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        runs = client.read_task_runs(flow_run_filter=flow_run)
    assert runs and all(run.state.name == "Cached" for run in runs)


def test_a_run_whose_outputs_were_deleted_recomputes_them(prefect_harness, checkpoints, recordings, tmp_path):
    import shutil

    from flows.full import wave2midi2wave

    out = tmp_path / "run"
    kwargs = dict(input_dir=recordings, output_dir=out, seconds=1.0, primer_seconds=1.0,
                  stages=["preprocess", "transcribe", "report"], transcriber=checkpoints / "transcriber.keras",
                  beam_args=["--direct_num_workers=1", "--direct_running_mode=in_memory"])
    wave2midi2wave(**kwargs)
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out)  # the cached results stay in Prefect's storage; the files are gone
    wave2midi2wave(**kwargs)
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == written
    assert (out / "report.json").is_file() and (out / "transcription" / "piece0.midi").is_file()
