"""Prefect tasks: each pipeline stage as a task, cached on what it reads.

A task's cache key hashes the *contents* of its input folder (every file's bytes) and of the
checkpoint it uses, plus its other parameters, so a rerun with the same inputs recomputes
nothing, a changed recording or model recomputes, and a killed run resumes: finished tasks come
from their persisted results and an unfinished stage skips the files it already wrote. A
checkpoint counts with every file beside it that shares its stem (stages.checkpoints.bundle_files:
the transcriber's rescorer, holding the note-end network, its record...), and every key
holds the installed version, so a new model file or an upgrade never serves an old result.
Heavy tasks share a concurrency limit (created on first use); failures retry only when they may
be transient (never a missing input, a bad parameter or a full disk).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
from pathlib import Path
from typing import Any

from prefect import task
from prefect.concurrency.sync import concurrency

from compose.config import SamplingSettings
from stages.checkpoints import bundle_files
from synthesize.config import RenderSettings
from transcribe.config import DecodingSettings

HEAVY = "w2m2w-heavy"  # a global concurrency limit: model stages one at a time by default


def fingerprint(path: Path) -> str:
    """Hash of a file's bytes, or of every file under a folder (relative names and bytes)."""
    digest = hashlib.sha256()
    path = Path(path)
    files = ([path] if path.is_file() else
             sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The installed version of wave2midi2wave: results of an older release are not served by a
    newer one. (Not a hash of the source: an edit in a checkout would then undo every cache.)"""
    import importlib.metadata

    try:
        return importlib.metadata.version("wave2midi2wave")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def content_key(context, parameters: dict[str, Any]) -> str:
    """Prefect cache key: the task, the code's version, its parameters, and the contents behind
    every input path, a `.keras` checkpoint with its companions (the `out` folder is named, not
    read: it is what the task writes)."""
    digest = hashlib.sha256(context.task.name.encode())
    digest.update(code_version().encode())

    def add(name: str, value: Any) -> None:
        digest.update(name.encode())
        if isinstance(value, dict):
            for key, item in sorted(value.items()):
                add(f"{name}.{key}", item)
        elif isinstance(value, Path) and name != "out" and value.is_file() and value.suffix == ".keras":
            for path in bundle_files(value):
                digest.update(path.name.encode())
                digest.update(fingerprint(path).encode())
        elif isinstance(value, Path) and name != "out" and value.exists():
            digest.update(fingerprint(value).encode())
        else:
            digest.update(repr(value).encode())

    for name, value in sorted(parameters.items()):
        add(name, value)
    return digest.hexdigest()


def may_be_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry what another try might fix, not what the user must fix."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        with contextlib.suppress(Exception):
            error = state.result(raise_on_failure=False)
    if isinstance(error, (ValueError, TypeError, LookupError, FileNotFoundError, NotADirectoryError,
                          IsADirectoryError, PermissionError, KeyboardInterrupt)):
        return False
    return not (isinstance(error, OSError) and error.errno == errno.ENOSPC)


@functools.lru_cache(maxsize=4)
def _ensure_limit(api_url: str | None) -> None:
    """Create the `w2m2w-heavy` limit (one slot) on the server in use when it has none; an
    existing limit is left as its owner set it."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(HEAVY)
        except ObjectNotFound:
            client.upsert_global_concurrency_limit_by_name(HEAVY, 1)


def heavy():
    """One slot of the `w2m2w-heavy` limit on a shared server: model stages run one at a time
    across flows. Not on the temporary server of one `w2m2w full`, which runs one flow (and whose
    database would keep the slot of a killed run taken, so that the next run waited for ever), nor
    on a Dask worker, where the cluster's worker threads say how many run at once (and the slot
    would make its workers take turns)."""
    from prefect.settings import PREFECT_API_URL

    from flows.server import TEMPORARY_URLS

    url = PREFECT_API_URL.value()
    if url in TEMPORARY_URLS or on_dask_worker():
        return contextlib.nullcontext()
    _ensure_limit(url)
    return concurrency(HEAVY, occupy=1, strict=False)


def on_dask_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:  # the `dask` extra is not installed
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=8)
def _loaded(kind, checkpoint: Path, stamp: tuple, **settings):
    return kind(checkpoint, **settings)


def loaded(kind, checkpoint: Path, **settings):
    """`kind(checkpoint, **settings)`, made once per process while the checkpoint file is
    unchanged: a model loads once per worker (or per `w2m2w serve`), not once per task."""
    stat = Path(checkpoint).stat()
    return _loaded(kind, Path(checkpoint), (stat.st_mtime_ns, stat.st_size), **settings)


STAGE_TASK = dict(cache_key_fn=content_key, persist_result=True, retries=2, retry_delay_seconds=5,
                  retry_condition_fn=may_be_transient)


@task(name="preprocess", **STAGE_TASK)
def preprocess(inputs: Path, out: Path, beam_args: tuple[str, ...] = ()) -> dict:
    """Recordings of any format -> 16 kHz mono WAV, on Apache Beam."""
    from maestro.beam_stage import run_stage
    from stages.io.normalize import NormalizeAudioStage

    return run_stage(NormalizeAudioStage(), inputs, out, beam_args=beam_args).to_dict()


@task(name="normalize", **STAGE_TASK)
def normalize(inputs: Path, out: Path) -> dict:
    """A recording -> 16 kHz mono WAV in this process: `preprocess` without a Beam pipeline, for
    one file on a Dask worker."""
    from stages.io.normalize import NormalizeAudioStage

    return NormalizeAudioStage().run(inputs, out).to_dict()


@task(name="transcribe", **STAGE_TASK)
def transcribe(inputs: Path, out: Path, checkpoint: Path, decoding: DecodingSettings = DecodingSettings()) -> dict:
    from transcribe.stage import TranscribeStage

    with heavy():
        return loaded(TranscribeStage, checkpoint, decoding=decoding, notes_csv=True).run(
            inputs, out, replace_other_config=True).to_dict()


@task(name="finetune-composer", **STAGE_TASK)
def finetune_composer(midi: Path, out: Path, checkpoint: Path, steps: int) -> str:
    """Fine-tune the composer on the transcribed MIDI; returns the new checkpoint (or the given
    one when steps is 0)."""
    if steps <= 0:
        return str(checkpoint)
    import keras

    from compose.data import load_pieces
    from compose.train import train

    with heavy():
        config = keras.saving.load_model(checkpoint, compile=False).config
        pieces = load_pieces(midi)  # small data: the pieces also serve as validation
        train(pieces, pieces, out, config, steps, steps_per_epoch=max(1, min(steps, 50)), initial_weights=checkpoint)
        return str(out / "best.keras")


@task(name="compose", **STAGE_TASK)
def compose(midi: Path, out: Path, checkpoint: Path, primer_seconds: float, sampling: SamplingSettings,
            plot: bool = True, infill: tuple[float, float] | None = None) -> dict:
    """Continuations as MIDI, each with its piano roll (the next stage reads only the MIDI);
    steered by a composer's name and a note density where the composer was trained with them;
    with `infill`, each piece with that stretch rewritten instead."""
    from compose.stage import Composer, ComposeStage

    with heavy():
        composer = loaded(Composer, checkpoint, settings=sampling)
        stage = ComposeStage(composer, primer_seconds, plot=plot, infill=infill)
        return stage.run(midi, out, replace_other_config=True).to_dict()


@task(name="synthesize", **STAGE_TASK)
def synthesize(midi: Path, out: Path, checkpoint: Path, rendering: RenderSettings = RenderSettings()) -> dict:
    from synthesize.stage import SynthesizeStage

    with heavy():
        return loaded(SynthesizeStage, checkpoint, rendering=rendering).run(
            midi, out, replace_other_config=True).to_dict()
