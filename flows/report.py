"""The flow's last task: what the run measured, as report.json and Prefect artifacts.

- transcription accuracy (mir_eval) when the input folder holds reference MIDI beside its
  recordings (same name);
- the composer's NLL per event on the transcriptions;
- round-trip note F1 of the renders: the synthesized audio transcribed again and scored against
  the MIDI it was rendered from.
Both mir_eval comparisons are also written as the benchmark report (`reports/<measure>/`:
report.html with piano rolls of reference against estimate, report.json, pieces.csv).
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.tasks import content_key
from stages.contract import write_text_atomic


def _figures(folder_result: dict) -> dict:
    return {name: {k: round(v, 4) for k, v in system["mean"].items()} | {"pieces": len(system["pieces"])}
            for name, system in folder_result["systems"].items()}


@task(name="report", cache_key_fn=content_key, persist_result=True)
def report(input_dir: Path, folders: dict[str, Path], composer_checkpoint: Path, transcriber_checkpoint: Path) -> dict:
    from transcribe.report import find_references, score, write_report

    run_dir = folders["synthesis"].parent

    def compare(measure: str, references: list, estimates: Path, title: str, intro: str) -> dict:
        scored = score(references, {estimates.name: estimates})
        write_report(scored, references, run_dir / "reports" / measure, title=title, intro=intro)
        return _figures(scored)

    result: dict = {}
    references = [r for r in find_references(input_dir)] if input_dir.is_dir() else []
    if references and folders["transcription"].is_dir():
        result["transcription_vs_reference"] = compare(
            "transcription", references, folders["transcription"], "Transcription benchmark",
            "the reference MIDI beside the input recordings against their transcriptions")
    if folders["transcription"].is_dir() and composer_checkpoint.is_file():
        import keras

        import compose.model  # noqa: F401  (registers the composer's layers: the compose task may have run elsewhere)
        from compose.data import load_pieces
        from compose.evaluate import nll_per_event

        pieces = load_pieces(folders["transcription"])
        if pieces:
            model = keras.saving.load_model(composer_checkpoint, compile=False)
            result["composer_nll_on_transcriptions"] = {k: round(v, 4) if isinstance(v, float) else v
                                                        for k, v in nll_per_event(model, pieces).items()}
    if folders["synthesis"].is_dir() and folders["composition"].is_dir() and transcriber_checkpoint.is_file():
        from transcribe.stage import TranscribeStage

        round_trip = run_dir / "round-trip"
        TranscribeStage(transcriber_checkpoint).run(folders["synthesis"], round_trip, progress=False)
        result["round_trip"] = compare(
            "round-trip", find_references(folders["composition"]), round_trip, "Round trip: MIDI -> audio -> MIDI",
            "the composed MIDI against the transcriptions of its WaveNet renders (how well the synthesizer "
            "plays what it is given, as the transcriber hears it)")
    out = run_dir / "report.json"
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    _publish(result)
    return result


def _publish(result: dict) -> None:
    rows = [{"measure": f"{section} / {system}",
             **{k: v for k, v in figures.items() if k.endswith("/f1") or k == "pieces"}}
            for section, systems in result.items() if section != "composer_nll_on_transcriptions"
            for system, figures in systems.items()]
    if rows:
        create_table_artifact(rows, key="wave2midi2wave-metrics", description="mir_eval F1 per measure")
    lines = ["# Wave2Midi2Wave run", ""]
    for section, body in result.items():
        lines += [f"## {section}", "", "```", json.dumps(body, indent=2), "```", ""]
    create_markdown_artifact("\n".join(lines), key="wave2midi2wave-report", description="what this run measured")
