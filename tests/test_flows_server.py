"""End to end with real parts: `prefect server start` on a free 127.0.0.1 port with a temporary
PREFECT_HOME, `w2m2w serve`, `prefect deployment run wave2midi2wave/full` with the tiny models;
the run is killed midway, run again, and the finished tasks are not recomputed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a Prefect server and worker processes

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_RUNNER_POLL_FREQUENCY": "1",
           "PREFECT_UI_ENABLED": "false"}
    process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: healthy(env["PREFECT_API_URL"]), 120, "the Prefect server")
        yield env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def start_serve(env, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "pipeline.py"), "serve"], env=env, cwd=REPO,
                            stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # the flow run's own process goes with it
    process.wait(timeout=30)


def run_deployment(env, parameters: dict, watch: bool) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [PREFECT, "deployment", "run", "wave2midi2wave/full", "--params", json.dumps(parameters)]
    if watch:
        return subprocess.run(command + ["--watch"], env=env, capture_output=True, text=True, timeout=600)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def task_states(env) -> list[tuple[str, str]]:
    code = ("import json\nfrom prefect.client.orchestration import get_client\n"
            "with get_client(sync_client=True) as c:\n"
            "    runs = c.read_flow_runs(sort='START_TIME_DESC', limit=1)\n"
            "    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId\n"
            "    tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id])))\n"
            "    print(json.dumps([[t.name, t.state.name] for t in tasks]))\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deployment_run_killed_midway_resumes_without_recomputing(server, checkpoints, recordings, tmp_path):
    out = tmp_path / "run"
    parameters = {"input_dir": str(recordings), "output_dir": str(out), "seconds": 1.0, "primer_seconds": 1.0,
                  "transcriber": str(checkpoints / "transcriber.keras"),
                  "composer": str(checkpoints / "composer.keras"),
                  "synthesizer": str(checkpoints / "synthesizer.keras"),
                  "beam_args": ["--direct_num_workers=1", "--direct_running_mode=in_memory"]}
    log = tmp_path / "serve.log"
    serving = start_serve(server, log)
    try:
        wait_for(lambda: "wave2midi2wave/full" in log.read_text(), 120, "the deployments to be served")
        assert run_deployment(server, parameters, watch=False).returncode == 0
        # Kill everything once the transcriptions are written, before the run can finish.
        wait_for(lambda: len(list((out / "transcription").glob("*.midi"))) == 2, 300, "the transcriptions")
    finally:
        stop(serving)
    assert not (out / "report.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in (out / "transcription").glob("*.midi")}

    serving = start_serve(server, log)
    try:
        wait_for(lambda: log.read_text().count("wave2midi2wave/full") >= 2, 120, "the deployments to be served again")
        result = run_deployment(server, parameters, watch=True)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        stop(serving)
    assert json.loads((out / "report.json").read_text())["round_trip"]
    assert {p: p.stat().st_mtime_ns for p in (out / "transcription").glob("*.midi")} == finished
    states = dict(task_states(server))
    assert any(name.startswith("preprocess") and state == "Cached" for name, state in states.items())
    assert not [p for p in out.rglob("*") if ".partial" in p.name]
    assert sorted(p.name for p in (out / "synthesis").glob("*.wav")) == ["piece0.wav", "piece1.wav"]
