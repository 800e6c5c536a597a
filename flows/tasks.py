"""Prefect tasks: each pipeline stage as a task, cached on what it reads.

A task's cache key hashes the *contents* of its input folder (every file's bytes) and of the
checkpoint it uses, plus its other parameters, so a rerun with the same inputs recomputes
nothing, a changed recording or model recomputes, and a killed run resumes: finished tasks come
from their persisted results and an unfinished stage skips the files it already wrote. Heavy
tasks share a concurrency limit; transient failures retry.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import task
from prefect.concurrency.sync import concurrency

HEAVY = "w2m2w-heavy"  # a global concurrency limit: model stages one at a time by default


def fingerprint(path: Path) -> str:
    """Hash of a file's bytes, or of every file under a folder (relative names and bytes)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def content_key(context, parameters: dict[str, Any]) -> str:
    """Prefect cache key: the task, its parameters, and the contents behind every input path
    (the `out` folder is named, not read: it is what the task writes)."""
    digest = hashlib.sha256(context.task.name.encode())

    def add(name: str, value: Any) -> None:
        digest.update(name.encode())
        if isinstance(value, dict):
            for key, item in sorted(value.items()):
                add(f"{name}.{key}", item)
        elif isinstance(value, Path) and name != "out" and value.exists():
            digest.update(fingerprint(value).encode())
        else:
            digest.update(repr(value).encode())

    for name, value in sorted(parameters.items()):
        add(name, value)
    return digest.hexdigest()


STAGE_TASK = dict(cache_key_fn=content_key, persist_result=True, retries=2, retry_delay_seconds=5)


@task(name="preprocess", **STAGE_TASK)
def preprocess(inputs: Path, out: Path, beam_args: tuple[str, ...] = ()) -> dict:
    """Recordings of any format -> 16 kHz mono WAV, on Apache Beam."""
    from maestro.beam_stage import run_stage
    from stages.normalize import NormalizeAudioStage

    return run_stage(NormalizeAudioStage(), inputs, out, beam_args=beam_args).to_dict()


@task(name="transcribe", **STAGE_TASK)
def transcribe(inputs: Path, out: Path, checkpoint: Path, note_ends: bool = True) -> dict:
    from transcribe.stage import TranscribeStage

    with concurrency(HEAVY, occupy=1, strict=False):
        return TranscribeStage(checkpoint, notes_csv=True, note_ends=note_ends).run(inputs, out).to_dict()


@task(name="finetune-composer", **STAGE_TASK)
def finetune_composer(midi: Path, out: Path, checkpoint: Path, steps: int) -> str:
    """Fine-tune the composer on the transcribed MIDI; returns the new checkpoint (or the given
    one when steps is 0)."""
    if steps <= 0:
        return str(checkpoint)
    import keras

    from compose.data import load_pieces
    from compose.train import train

    with concurrency(HEAVY, occupy=1, strict=False):
        config = keras.saving.load_model(checkpoint, compile=False).config
        pieces = load_pieces(midi)  # small data: the pieces also serve as validation
        train(pieces, pieces, out, config, steps, steps_per_epoch=max(1, min(steps, 50)), initial_weights=checkpoint)
        return str(out / "best.keras")


@task(name="compose", **STAGE_TASK)
def compose(midi: Path, out: Path, checkpoint: Path, primer_seconds: float, seconds: float, seed: int,
            plot: bool = True) -> dict:
    """Continuations as MIDI, each with its piano roll (the next stage reads only the MIDI)."""
    from compose.stage import ComposeStage, Composer

    with concurrency(HEAVY, occupy=1, strict=False):
        composer = Composer(checkpoint, seconds=seconds, seed=seed)
        return ComposeStage(composer, primer_seconds, plot=plot).run(midi, out).to_dict()


@task(name="synthesize", **STAGE_TASK)
def synthesize(midi: Path, out: Path, checkpoint: Path, seed: int) -> dict:
    from synthesize.stage import SynthesizeStage

    with concurrency(HEAVY, occupy=1, strict=False):
        return SynthesizeStage(checkpoint, seed=seed).run(midi, out).to_dict()
