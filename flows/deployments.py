"""The deployments `w2m2w serve` serves (and prefect.yaml declares for a process work pool):

  wave2midi2wave/full        the whole DAG
  wave2midi2wave/preprocess  one stage on a folder (likewise transcribe, compose, synthesize)
  wave2midi2wave/maestro-t   the loop: a dataset re-transcribed, a composer trained on it (flows/maestro_t.py)
  retranscribe-maestro/batch the Beam re-transcription of a MAESTRO-layout dataset
  benchmark-report/report    the mir_eval benchmark report
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from prefect import flow
from pydantic import Field

from flows.full import wave2midi2wave
from flows.maestro_t import maestro_t
from transcribe.config import DecodingSettings


@flow(name="retranscribe-maestro", log_prints=True)
def retranscribe_maestro(
    root: Annotated[str, Field(description="MAESTRO-layout dataset folder")],
    output_dir: Annotated[str, Field(description="where the MIDI and metrics go")],
    splits: list[str] = [],  # noqa: B006
    checkpoint: str | None = None,
    decoding: DecodingSettings = DecodingSettings(),
    beam_args: list[str] = [],  # noqa: B006
) -> dict:
    from batch import retranscribe
    from stages.checkpoints import checkpoint_for

    summary = retranscribe.run(root, output_dir, str(checkpoint_for("transcribe", checkpoint)),
                               retranscribe.RetranscribeConfig(splits=tuple(splits), decoding=decoding), beam_args)
    return {k: v for k, v in summary.items() if k != "per_recording"}


@flow(name="benchmark-report", log_prints=True)
def benchmark_report(reference: Path, estimates: list[Path], output_dir: Path) -> list[str]:
    from transcribe.report import find_references, score, write_report

    references = find_references(reference)
    return [str(p) for p in write_report(score(references, estimates), references, output_dir)]


def deployments() -> list:
    single = [wave2midi2wave.to_deployment(name=stage, parameters={"stages": [stage]},
                                           description=f"the {stage} stage alone, on a folder")
              for stage in ("preprocess", "transcribe", "compose", "synthesize")]
    return [wave2midi2wave.to_deployment(name="full", description="the whole Wave2Midi2Wave DAG"),
            *single,
            maestro_t.to_deployment(name="maestro-t", description="a composer trained on a dataset's transcriptions"),
            retranscribe_maestro.to_deployment(name="batch", description="Beam re-transcription of a MAESTRO dataset"),
            benchmark_report.to_deployment(name="report", description="mir_eval benchmark report")]
