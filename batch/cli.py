"""The `w2m2w maestro retranscribe` command (registered under `maestro` by pipeline.py); its options
are the fields of batch/settings.py. Beam, TensorFlow and the transcriber load only when it runs."""

from __future__ import annotations

from batch.settings import Retranscription
from stages.cli import add_command
from transcribe.config import DecodingSettings


def add_retranscribe(commands) -> None:
    add_command(commands, "retranscribe", "Apache Beam: transcribe a whole MAESTRO-layout dataset, with metrics",
                Retranscription, "batch.retranscribe:retranscribe_from",
                (DecodingSettings, "decoding", "as in `w2m2w transcribe`"), beam=True)
