"""Prefect's API for one `w2m2w full` run: the configured server when PREFECT_API_URL is set,
otherwise a temporary one that lives exactly as long as this process.

Prefect would start its own temporary server, but only Ctrl-C stops it: after SIGTERM or SIGKILL
it stays behind, listening, with no parent. Ours is started here, stopped on the way out (SIGTERM
is raised as KeyboardInterrupt by the CLI, so that runs too), and asks the kernel to send it
SIGTERM when its parent dies (Linux' PR_SET_PDEATHSIG), which also covers SIGKILL.

    python -m flows.server PARENT_PID PORT   # the server process itself
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
TEMPORARY_URLS: set[str] = set()  # the API URLs of the temporary servers this process started


@contextlib.contextmanager
def prefect_api(startup_timeout_s: float = 180.0) -> Iterator[str | None]:
    """Within the block, Prefect talks to the configured API, or to a temporary local server
    (yields its URL; None for the configured one)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield None
        return
    for attempt in range(3):  # another process may take the free port before the server binds it
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        process = subprocess.Popen([sys.executable, "-m", "flows.server", str(os.getpid()), str(port)],
                                   stdin=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C reaches us: we stop it
                                   env={**os.environ, "PREFECT_UI_ENABLED": "false"})
        try:
            _wait_until_healthy(process, url, startup_timeout_s)
            break
        except ServerExited:
            if attempt == 2:
                raise
        except BaseException:
            _stop(process)
            raise
    try:
        TEMPORARY_URLS.add(url)
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        TEMPORARY_URLS.discard(url)
        _stop(process)


class ServerExited(RuntimeError):
    """The temporary server ended before it answered."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(process: subprocess.Popen, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerExited(f"Prefect's temporary server exited at start-up (status {process.returncode}); "
                               "run with -v to see why")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Prefect's temporary server did not answer within {timeout_s:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _die_with(parent_pid: int) -> None:
    """Have the kernel send SIGTERM to this process when its parent dies (Linux)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the request took hold
        sys.exit(0)


def serve(parent_pid: int, port: int) -> None:
    _die_with(parent_pid)
    import uvicorn
    from prefect.server.api.server import create_app

    # ephemeral: no UI and no background services, as Prefect's own temporary server.
    uvicorn.run(create_app(ephemeral=True, final=True), host="127.0.0.1", port=port, log_level="error",
                lifespan="on")


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))


def quiet_runs(verbose: bool, beam_args: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Unless `verbose`: a failure is said once by the command, not as Prefect's tracebacks, and Beam's
    direct runner works in threads (worker processes would each log ~20 lines). Returns the Beam options."""
    import logging

    beam_args = list(beam_args)
    if not verbose:
        for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        if not any(a.startswith(("--runner", "--direct_running_mode")) for a in beam_args):
            beam_args.append("--direct_running_mode=multi_threading")
    return beam_args
