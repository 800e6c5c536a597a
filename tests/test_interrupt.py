"""Interruptions of real `w2m2w` processes: SIGINT, SIGTERM and SIGKILL in the middle of
`transcribe` and of `full`, then a rerun. What finished is never computed again, no partial
file remains, and `full` leaves no Prefect server behind whatever signal ended it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from stages.contract import PARTIAL_MARK

pytestmark = pytest.mark.slow  # signals sent to subprocesses

REPO = Path(__file__).resolve().parents[1]
INTERRUPTED = "w2m2w: interrupted; finished files are kept, and the same command goes on from there"


def recordings(folder: Path, count: int, seconds: float = 2.0) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        t = np.arange(int(seconds * 16_000)) / 16_000
        pitch = 220 * 2 ** (rng.integers(0, 24) / 12)
        soundfile.write(folder / f"piece{i:02d}.wav", (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), 16_000)
    return folder


def w2m2w(*args: str, env: dict | None = None) -> subprocess.Popen:
    merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}  # None: unset
    return subprocess.Popen([sys.executable, str(REPO / "pipeline.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=merged, preexec_fn=interruptible)


def interruptible() -> None:
    """In the child, before exec: SIGINT as a terminal gives it. An ignored SIGINT is inherited
    through exec, and Python then never raises KeyboardInterrupt (the command ran to the end, exit
    0); in the whole suite, something run in-process before this module left it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, process: subprocess.Popen, timeout_s: float = 300.0) -> bool:
    """Poll until `condition()`; False when the process ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError("the process made no progress")


def outputs(folder: Path, pattern: str = "*.midi") -> dict[Path, int]:
    """Finished outputs (temporaries are hidden) -> their modification times."""
    if not folder.exists():
        return {}
    return {p: p.stat().st_mtime_ns for p in folder.rglob(pattern) if not p.name.startswith(".")}


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if PARTIAL_MARK in p.name or p.name.endswith(".partial")]


def expected_status(signum: int) -> int:
    return -signal.SIGKILL if signum == signal.SIGKILL else 128 + signum


def stop(process: subprocess.Popen, signum: int) -> tuple[str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == expected_status(signum), (process.returncode, err[-2000:])
    if signum != signal.SIGKILL:
        assert err.strip().splitlines()[-1] == INTERRUPTED, err[-2000:]
        assert "Traceback" not in err, err[-2000:]
    return out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_transcribe_interrupted_then_rerun_recomputes_nothing_finished(signum, checkpoints, tmp_path):
    # Enough files that a loaded machine, slow to poll, still signals the run before it ends.
    count = 48
    inputs, out = recordings(tmp_path / "in", count), tmp_path / "out"
    command = ["transcribe", str(inputs), str(out), "--checkpoint", str(checkpoints / "transcriber.keras")]
    process = w2m2w(*command)
    assert wait_for(lambda: len(outputs(out)) >= 1, process), process.communicate()[1][-2000:]
    stop(process, signum)
    finished = outputs(out)
    assert 1 <= len(finished) < count, "the run ended before the signal"
    if signum != signal.SIGKILL:  # removed on the way out; after SIGKILL, by the rerun
        assert not partials(out)
    rerun = w2m2w(*command)
    text, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert text.startswith(f"transcribe: {count - len(finished)} written, {len(finished)} skipped (already done)")
    now = outputs(out)
    assert len(now) == count
    assert {p: now[p] for p in finished} == finished  # not one finished file written again
    assert not partials(out)


def server_processes(parent_pid: int) -> list[int]:
    """Prefect servers started by `w2m2w full` process `parent_pid` (flows/server.py)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"flows.server" in argv and str(parent_pid).encode() in argv:
                found.append(int(entry.name))
    return found


def gone(pids_of, pid: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pids_of(pid):
            return True
        time.sleep(0.2)
    return False


def test_full_interrupted_by_each_signal_leaves_no_server_and_resumes(checkpoints, tmp_path):
    inputs, run = recordings(tmp_path / "in", 24, 3.0), tmp_path / "run"
    folder = tmp_path / "models"  # a copy: a rescorer is added beside it below
    folder.mkdir()
    transcriber = folder / "tiny.keras"
    shutil.copy(checkpoints / "transcriber.keras", transcriber)
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": None,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    command = ["full", str(inputs), str(run), "--stages", "preprocess,transcribe", "--transcriber", str(transcriber),
               "--direct_num_workers=1"]
    finished: dict[Path, int] = {}
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        process = w2m2w(*command, env=env)
        progressed = wait_for(lambda: len(outputs(run / "transcription")) > len(finished)
                              and server_processes(process.pid), process)
        assert progressed, process.communicate()[1][-3000:]
        assert server_processes(process.pid)
        stop(process, signum)
        assert gone(server_processes, process.pid), f"Prefect's server outlived w2m2w after signal {signum}"
        if signum != signal.SIGKILL:
            assert not partials(run)
        now = outputs(run / "transcription")
        assert {p: now[p] for p in finished} == finished
        finished = now
    assert len(finished) < 24, "the runs ended before the signals"
    audio = outputs(run / "audio", "*.wav")
    process = w2m2w(*command, env=env)
    text, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    assert len((text + err).strip().splitlines()) <= 20, text + err
    now = outputs(run / "transcription")
    assert len(now) == 24 and {p: now[p] for p in finished} == finished
    assert {p: t for p, t in outputs(run / "audio", "*.wav").items() if p in audio} == audio
    assert not partials(run) and not server_processes(process.pid)

    # A new rescorer beside the transcriber: the transcribe task runs again (not served from the
    # cache) and writes every transcription anew with it.
    from transcribe.rescorer.rescore import NUM_FEATURES, build_rescorer, rescorer_path

    features = np.random.default_rng(0).uniform(0, 1, (64, NUM_FEATURES)).astype(np.float32)
    build_rescorer(features, candidate_threshold=0.3).save(rescorer_path(transcriber))
    process = w2m2w(*command, env=env)
    text, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    assert "transcribe: 24 written" in text
    again = outputs(run / "transcription")
    assert all(again[p] != now[p] for p in now)
    record = json.loads((run / "transcription" / "transcribe.stage.json").read_text())
    assert record["config"]["rescorer_sha256"] is not None
