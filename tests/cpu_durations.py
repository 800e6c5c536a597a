"""`python -m pytest -p tests.cpu_durations ...`: each test phase's CPU seconds (this process and
the children it waited for: servers, subprocesses, Dask workers), the largest first.

On a loaded machine a `nice`d test's wall time is mostly waiting for a core; its CPU time is
close to what it takes on a quiet one, so before/after comparisons stay meaningful there.
"""

from __future__ import annotations

import resource
import time

import pytest

MIN_CPU_S = 0.5  # phases below this are left out of the table
_phases: list[tuple[float, float, str, str]] = []  # (cpu_s, wall_s, phase, test id)


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(phase: str):
    @pytest.hookimpl(wrapper=True)
    def hook(item):
        cpu_s, wall_s = _cpu_s(), time.monotonic()
        try:
            return (yield)
        finally:
            _phases.append((_cpu_s() - cpu_s, time.monotonic() - wall_s, phase, item.nodeid))
    return hook


pytest_runtest_setup = _timed("setup")
pytest_runtest_call = _timed("call")
pytest_runtest_teardown = _timed("teardown")


def pytest_terminal_summary(terminalreporter):
    write = terminalreporter.write_line
    write("==== CPU seconds per test phase (children included), largest first ====")
    for cpu_s, wall_s, phase, nodeid in sorted(_phases, reverse=True):
        if cpu_s >= MIN_CPU_S:
            write(f"{cpu_s:7.1f} s cpu {wall_s:8.1f} s wall  {phase:<8} {nodeid}")
    write(f"total: {sum(p[0] for p in _phases):.1f} s cpu, {sum(p[1] for p in _phases):.1f} s wall")
