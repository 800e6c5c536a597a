"""The Wave2Midi2Wave DAG as one Prefect flow: preprocess (Beam) -> transcribe -> compose
(optionally fine-tuned on the transcriptions) -> synthesize -> report, each stage writing its own
folder under one run folder. `stages` picks a subset, so the same flow also runs a single stage
on a folder (the stage's input is then `input_dir`).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow
from pydantic import Field

from compose.config import SamplingSettings
from compose.vocabulary import COMPOSERS
from flows import tasks
from flows.report import report
from stages.checkpoints import checkpoint_for
from stages.contract import printable
from synthesize.config import RenderSettings
from transcribe.config import DecodingSettings

Stage = Literal["preprocess", "transcribe", "compose", "synthesize", "report"]
ALL_STAGES: list[Stage] = ["preprocess", "transcribe", "compose", "synthesize", "report"]
# The bundled example and the run folder, from the working folder (the repository root, where prefect.yaml
# and `w2m2w serve` run the flow).
EXAMPLE_RECORDINGS = Path("examples") / "recordings"


def _while_outputs_exist(task, *outputs: Path):
    """The task as it is while what it wrote is still there; otherwise one that recomputes and
    replaces its cached result (a cached result is worth only as much as its files)."""
    return task if all(Path(p).exists() for p in outputs) else task.with_options(refresh_cache=True)


def _checkpoint(given: Path | None, package: str, **request) -> Path:
    """The checkpoint given, else the shipped one for the request, chosen as the stages choose it."""
    return Path(checkpoint_for(package, given, **request))


def check_parameters(input_dir: Path, output_dir: Path, stages: list[str], checkpoints: dict,
                     decoding: DecodingSettings = DecodingSettings()) -> None:
    """What a user must fix fails here, before any task runs (and is never retried)."""
    from stages.cli import check_paths

    if not stages:
        raise ValueError("no stages chosen")
    if input_dir.resolve() == output_dir.resolve():
        raise ValueError(f"the run folder is the input folder ({input_dir}): choose another run folder")
    check_paths(input_dir, output_dir, checkpoints)
    if "transcribe" in stages:
        decoding.check_for(checkpoints["transcriber"])


@flow(name="wave2midi2wave", log_prints=True)
def wave2midi2wave(
    input_dir: Annotated[Path, Field(description="folder of recordings (or of the first chosen stage's input)")
                         ] = EXAMPLE_RECORDINGS,
    output_dir: Annotated[Path, Field(description="run folder: one sub-folder per stage")] = Path("runs") / "full",
    seconds: Annotated[float, Field(gt=0, le=600, description="length of the new music per piece, seconds")] = 20.0,
    primer_seconds: Annotated[float, Field(gt=0, le=120, description="seconds of each transcription to continue")
                              ] = 10.0,
    finetune_steps: Annotated[int, Field(ge=0, description="fine-tune the composer on the transcriptions; "
                                                          "0: shipped model")] = 0,
    seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="sampling seed: the same seed, the same music")] = 0,
    composer_style: Annotated[Literal[COMPOSERS] | None, Field(  # type: ignore[valid-type]
        description="write in the manner of this composer (the shipped conditioned composer steers)")] = None,
    notes_per_second: Annotated[float | None, Field(
        gt=0, le=60, description="about how dense the new music is (the shipped conditioned composer steers)")] = None,
    include_primer: Annotated[bool, Field(description="compositions hold the primer before the new music")] = False,
    infill: Annotated[tuple[float, float] | None, Field(
        description="instead of continuing: rewrite this stretch (start, end seconds) of each transcription to "
                    "lead from the primer_seconds before into the music after")] = None,
    stages: Annotated[list[Stage], Field(description="stages to run, in DAG order")] = ALL_STAGES,
    transcriber: Annotated[Path | None, Field(description="transcriber .keras (default: shipped)")] = None,
    decoding: Annotated[DecodingSettings, Field(
        description="how transcription decodes notes, as `w2m2w transcribe`'s options: onset_threshold, "
                    "frame_threshold, min_note_ms, rescore, note_ends, midi_tempo")] = DecodingSettings(),
    composer: Annotated[Path | None, Field(description="composer .keras (default: shipped)")] = None,
    synthesizer: Annotated[Path | None, Field(description="synthesizer .keras (default: shipped)")] = None,
    beam_args: Annotated[list[str], Field(description="Apache Beam options for preprocessing")] = [],  # noqa: B006
    dask_address: Annotated[str | None, Field(
        description="HOST:PORT of a Dask scheduler: each stage runs as one task per file on its workers")] = None,
) -> dict:
    composer_checkpoint = _checkpoint(composer, "compose", composer=composer_style, notes_per_second=notes_per_second)
    # The stages' settings, built once from the flow's parameters (the seed is both stages').
    sampling = SamplingSettings(seconds=seconds, seed=seed, composer=composer_style, notes_per_second=notes_per_second,
                                include_primer=include_primer)
    rendering = RenderSettings(seed=seed)
    check_parameters(Path(input_dir), Path(output_dir), stages, {
        "transcriber": _checkpoint(transcriber, "transcribe") if {"transcribe", "report"} & set(stages) else None,
        "composer": composer_checkpoint if "compose" in stages else None,
        "synthesizer": _checkpoint(synthesizer, "synthesize") if "synthesize" in stages else None}, decoding)
    output_dir = Path(output_dir)
    folders = {name: output_dir / name for name in ("audio", "transcription", "composer", "composition", "synthesis")}
    timings: dict[str, float] = {}
    current = Path(input_dir)

    def timed(name, function, *args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        timings[name] = round(time.perf_counter() - start, 3)
        return result

    def stage(name, task, inputs, out, *args, **kwargs):
        """The stage's task on the whole folder here, or one task per file on the Dask cluster."""
        if dask_address:
            from flows.dask import on_cluster

            return timed(name, on_cluster, dask_address, name, inputs, out, *args, **kwargs)
        return timed(name, _while_outputs_exist(task, out), inputs, out, *args, **kwargs)

    reports = {}
    if "preprocess" in stages:
        beam = {} if dask_address else {"beam_args": tuple(beam_args)}  # one file needs no Beam pipeline
        reports["preprocess"] = stage("preprocess", tasks.preprocess, current, folders["audio"], **beam)
        current = folders["audio"]
    if "transcribe" in stages:
        reports["transcribe"] = stage("transcribe", tasks.transcribe, current, folders["transcription"],
                                      checkpoint=_checkpoint(transcriber, "transcribe"), decoding=decoding)
        current = folders["transcription"]
    if "compose" in stages:
        finetuned = [folders["composer"] / "best.keras"] if finetune_steps > 0 else []
        composer_checkpoint = Path(timed("finetune-composer", _while_outputs_exist(tasks.finetune_composer, *finetuned),
                                         current, folders["composer"], composer_checkpoint, finetune_steps))
        reports["compose"] = stage("compose", tasks.compose, current, folders["composition"],
                                   checkpoint=composer_checkpoint, primer_seconds=primer_seconds, sampling=sampling,
                                   infill=infill)
        current = folders["composition"]
    if "synthesize" in stages:
        reports["synthesize"] = stage("synthesize", tasks.synthesize, current, folders["synthesis"],
                                      checkpoint=_checkpoint(synthesizer, "synthesize"), rendering=rendering)
    summary = {"stages": reports, "stage_seconds": timings, "output_dir": str(output_dir)}
    if "report" in stages:
        summary["report"] = timed("report", _while_outputs_exist(report, output_dir / "report.json"), Path(input_dir),
                                  folders, composer_checkpoint, _checkpoint(transcriber, "transcribe"))
    failed = [e for r in reports.values() for e in r.get("failed", [])]
    if failed:
        print(f"{len(failed)} file(s) failed: " + "; ".join(f"{printable(e['path'])}: {printable(e['reason'])}"
                                                            for e in failed))
    return summary


CACHE_FOLDER = ".prefect-cache"  # Prefect's task results under the run folder


def run_full(settings, decoding: DecodingSettings, beam_args=(), verbose: bool = False) -> int:
    """`w2m2w full`: the flow under `settings.out`, OUT/summary.json, a few lines on the terminal;
    exit status 1 when some file failed."""
    import json

    from flows.server import prefect_api, quiet_runs
    from stages.contract import write_text_atomic

    beam_args = quiet_runs(verbose, beam_args)
    with prefect_api(), results_under(settings.out):
        summary = wave2midi2wave(input_dir=settings.inputs or EXAMPLE_RECORDINGS, output_dir=settings.out,
                                 seconds=settings.seconds, primer_seconds=settings.primer_seconds,
                                 finetune_steps=settings.finetune_steps, seed=settings.seed, stages=settings.stages,
                                 transcriber=settings.transcriber, decoding=decoding, composer=settings.composer,
                                 synthesizer=settings.synthesizer, beam_args=beam_args, dask_address=settings.dask)
    write_text_atomic(settings.out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    print("\n".join(summary_lines(summary)))
    failed = sum(len(r.get("failed", [])) for r in summary["stages"].values())
    return 0 if failed == 0 else 1


@contextlib.contextmanager
def results_under(out: Path):
    """Prefect's task results, which its cache serves a rerun from, under the run folder
    (OUT/.prefect-cache) rather than in ~/.prefect: a run's cache goes with its folder. A
    PREFECT_RESULTS_LOCAL_STORAGE_PATH set by the user is kept."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    if any(name in os.environ for name in ("PREFECT_RESULTS_LOCAL_STORAGE_PATH", "PREFECT_LOCAL_STORAGE_PATH")):
        yield
        return
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: (out / CACHE_FOLDER).resolve()}):
        yield


def summary_lines(summary: dict) -> list[str]:
    """A few lines for the terminal: one per stage, its failures, the report's main figures (the
    whole summary is in OUT/summary.json)."""
    lines = []
    for name, done in summary["stages"].items():
        seconds = summary["stage_seconds"].get(name)
        lines.append(f"{name}: {len(done['written'])} written, {len(done['skipped'])} skipped (already done), "
                     f"{len(done['failed'])} failed" + (f" [{seconds:.1f} s]" if seconds is not None else ""))
        lines += [f"  FAILED {printable(error['path'])}: {printable(error['reason'])}" for error in done["failed"]]
    for measure, figures in (summary.get("report") or {}).items():
        systems = {name: value for name, value in figures.items() if isinstance(value, dict)}
        plain = {name: value for name, value in figures.items() if not isinstance(value, dict)}
        if plain:
            lines.append(f"{measure}: " + ", ".join(f"{k} {v}" for k, v in plain.items()))
        for system, values in systems.items():
            shown = {k: v for k, v in values.items() if k.endswith("/f1") or k == "pieces"}
            lines.append(f"{measure} / {system}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    out = Path(summary["output_dir"])
    reports = (("report.json", out / "report.json"), ("reports/", out / "reports"))
    made = ["summary.json"] + [name for name, path in reports if "report" in summary and path.exists()]
    lines.append(f"-> {summary['output_dir']} ({', '.join(made)})")
    return lines
