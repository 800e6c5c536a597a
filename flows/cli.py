"""The `w2m2w full`, `maestro-t` and `serve` commands; the options of the first two are the fields of
flows/settings.py. Prefect loads only when a command runs."""

from __future__ import annotations

from flows import settings as s
from stages.cli import add_command
from transcribe.config import DecodingSettings


def add_full(commands) -> None:
    decoding = (DecodingSettings, "transcription", "how the transcribe stage decodes notes, as in `w2m2w transcribe`")
    add_command(commands, "full", "the whole DAG on a folder of recordings (Prefect, no server needed)", s.FullRun,
                "flows.full:run_full", decoding, after="transcriber", beam=True)


def add_maestro_t(commands) -> None:
    add_command(commands, "maestro-t", "the composer trained on a dataset's transcriptions (Prefect, no server "
                "needed)", s.MaestroT, "flows.maestro_t:run_maestro_t", beam=True)


def add_serve(commands) -> None:
    parser = commands.add_parser(
        "serve", help="serve every deployment from this process (against PREFECT_API_URL)",
        description="Serve wave2midi2wave/full, one deployment per stage, retranscribe-maestro/batch "
                    "and benchmark-report/report from this process, so `prefect deployment run "
                    "wave2midi2wave/full --param ...` runs here. Start a server first (`prefect server "
                    "start`) and point PREFECT_API_URL at it; stop this process before the server.")
    parser.set_defaults(run=run_serve)


def run_serve(args) -> int:
    from prefect import serve

    from flows.deployments import deployments

    serve(*deployments())
    return 0
