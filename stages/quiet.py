"""What a command prints by default: our own summaries and warnings, not the libraries' start-up
chatter (`-v` shows everything)."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import warnings

# Loggers of libraries that speak at INFO about their own workings (HTTP requests to Prefect's
# temporary server, Beam's worker harness, TensorFlow and absl).
LIBRARY_LOGGERS = ("prefect", "httpx", "httpcore", "apache_beam", "absl", "tensorflow", "keras", "urllib3",
                   "uvicorn", "fastapi", "docket", "matplotlib", "PIL", "h5py", "numba", "asyncio")


def configure(verbose: bool) -> None:
    """Logging for a command: everything at DEBUG with `verbose`; otherwise warnings only, and
    TensorFlow's native start-up lines (CUDA, oneDNN) and pydub's ffmpeg warning (only MP3 input
    needs ffmpeg, and a file it cannot read says so) silenced."""
    root = logging.getLogger()
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if verbose:
        return
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # e.g. "triggered tf.function retracing"
    if _drop_irrelevant not in root.filters:
        root.addFilter(_drop_irrelevant)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::RuntimeWarning:pydub.utils")  # Beam's worker processes too
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport("tensorflow"))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (it may be replaced, as pytest does)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _drop_irrelevant(record: logging.LogRecord) -> bool:
    """Beam warns on import that Google Cloud's BigQuery client is missing: we never use it."""
    return not str(record.msg).startswith("apitools not found")


@contextlib.contextmanager
def native_stderr_silenced():
    """Send what native code writes to file descriptor 2 to /dev/null; Python's sys.stderr is
    flushed first and keeps working for what it writes afterwards (it shares the descriptor, so
    it is silenced too while this lasts: keep the block to an import)."""
    with contextlib.suppress(ValueError, AttributeError):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports one module (TensorFlow, whose native logging writes CUDA and oneDNN notices to
    stderr before anything can configure it) with native stderr silenced, the first time."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        with native_stderr_silenced():
            self.original_spec = importlib.import_module(fullname).__spec__
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return sys.modules[spec.name]

    def exec_module(self, module):
        module.__spec__ = self.original_spec  # the import machinery set ours
        module.__loader__ = self.original_spec.loader
