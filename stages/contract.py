"""The stage contract: a folder (or a list of files) in, a folder out.

Every stage of the pipeline (rendering, transcription, composition, synthesis) is a `Stage`.
The CLI, the Prefect tasks, Beam and the tests all drive stages through `Stage.run`, which:

- finds the input files (by suffix) and plans one `Job` per file, whose outputs mirror the
  input tree under the output folder (a stage may map names differently, e.g. a dataset layout);
- skips jobs whose outputs all exist, unless `overwrite=True`;
- writes each output under a temporary name in the output folder, then renames it into place,
  so a killed run never leaves a half-written file under a final name;
- records the stage's configuration beside its outputs, and refuses to mix outputs of a
  different configuration into the same folder;
- catches a failure per file, reports it (file and reason) and goes on with the rest;
- never writes over an input file.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import socket
import sys
import uuid
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Iterable, Sequence

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

PARTIAL_MARK = ".partial-"


class InputError(ValueError):
    """A problem with one input file; its message is the reason shown to the user."""


class UsageError(ValueError):
    """A problem with the command as a whole (a missing folder, an unusable checkpoint, an output
    folder that cannot be written): nothing was done; its message is the whole answer."""


class StageConfigError(UsageError):
    """The output folder holds outputs of the same stage made with another configuration."""


DISK_FULL = "no space left on device"


@dataclasses.dataclass(frozen=True)
class Job:
    """One input file and the final paths of its outputs (role -> path)."""

    source: Path
    relative: PurePosixPath
    targets: dict[str, Path]

    def done(self) -> bool:
        """Every output is there, as a file (a folder at an output's path is in the way, not done)."""
        return all(path.is_file() for path in self.targets.values())

    @property
    def main_target(self) -> Path:
        """The output of the first role (the MIDI of a transcription, the WAV of a synthesis)."""
        return next(iter(self.targets.values()))


@dataclasses.dataclass(frozen=True)
class FileError:
    path: str
    reason: str


@dataclasses.dataclass
class StageReport:
    stage: str
    output_dir: str
    written: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[FileError] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (f"{self.stage}: {len(self.written)} written, {len(self.skipped)} skipped "
                f"(already done), {len(self.failed)} failed -> {self.output_dir}")
        return "\n".join([text] + [f"  FAILED {printable(e.path)}: {printable(e.reason)}" for e in self.failed])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Every file that failed in this process, by stage, as it failed: an interrupted command still
#: names what had already failed (its summary is never printed).
FAILED_SO_FAR: list[tuple[str, FileError]] = []


def _fail(report: StageReport, error: FileError) -> None:
    report.failed.append(error)
    FAILED_SO_FAR.append((report.stage, error))
    del FAILED_SO_FAR[:-10_000]  # a long-lived process (`w2m2w serve`) keeps only the latest


def printable(text: str) -> str:
    """A path (or a reason naming one) fit for any terminal or log: bytes of a file name that are
    not UTF-8 (kept by Python as surrogates) shown as \\xNN escapes instead of failing to print."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def resolved(path: Path) -> Path:
    """The path with every link followed, as far as they lead (a broken or looping link is left
    where it stops, never an error)."""
    return Path(os.path.realpath(path))


def link_problem(path: Path) -> str | None:
    """Why an input that is a link cannot be read (it is broken, or loops), or None."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "the link loops (it leads back to itself): nothing to read"
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"broken link: its target {target} does not exist"
    return None


def _dead_link(path: Path) -> bool:
    """A link that leads nowhere (broken, or looping): an input to report, not to pass over."""
    return path.is_symlink() and not path.exists()


def escapes(target: Path, output_dir: Path) -> bool:
    """Whether writing `target` would land outside `output_dir` (through a link inside it)."""
    folder, where = resolved(output_dir), resolved(target)
    return where != folder and folder not in where.parents


def describe_error(error: BaseException) -> str:
    """A one-line reason for a failed file."""
    if isinstance(error, InputError):
        return str(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return DISK_FULL
    if isinstance(error, MemoryError):
        return "out of memory"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def disk_full(folder: Path, margin_bytes: int = 1 << 20) -> bool:
    """Whether the filesystem of `folder` has (almost) no space left: writers such as libsndfile
    report a full disk only as "System error"."""
    try:
        return shutil.disk_usage(folder).free < margin_bytes
    except OSError:
        return False


def on_terminal() -> bool:
    """Progress bars only where someone watches them (not in logs, pipes or CI)."""
    return sys.stderr.isatty()


class Stage:
    """Base class of all stages. Subclasses set the class attributes and implement `process`."""

    name: ClassVar[str] = "stage"
    #: Suffixes (lower case, with the dot) of the files the stage reads from a folder.
    input_suffixes: ClassVar[tuple[str, ...]] = ()
    #: Output role -> suffix; the default naming mirrors the input path with that suffix.
    output_suffixes: ClassVar[dict[str, str]] = {}

    # -- what subclasses provide -------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Settings that change the outputs; recorded beside them as `<name>.stage.json`."""
        return {}

    def accepts(self, source: Path) -> bool:
        """Whether to process this input file at all (e.g. only files a split file lists)."""
        return True

    def output_names(self, source: Path, relative: PurePosixPath) -> dict[str, PurePosixPath]:
        """Output role -> path relative to the output folder. Default: mirror the input tree."""
        return {role: relative.with_suffix(suffix) for role, suffix in self.output_suffixes.items()}

    def prepare(self) -> None:
        """Load what every job needs (a model) before anything is written; raise UsageError
        when that cannot be done, so that a bad checkpoint fails once, not once per file."""

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        """Read `job.source` and write every output role to its temporary path."""
        raise NotImplementedError

    # -- the contract ------------------------------------------------------------------------

    def find_inputs(self, inputs: Path | str | Sequence[Path | str],
                    exclude: Path | None = None) -> tuple[Path, list[Path]]:
        """The input root and the input files, sorted. A folder is searched recursively."""
        if isinstance(inputs, (str, os.PathLike)):
            root = Path(inputs)
            if root.is_file():
                return root.parent, [root]
            if not root.is_dir():
                raise FileNotFoundError(f"input folder not found: {root}")
            self.check_not_feeding_back(root, exclude)
            # An output folder nested in the input folder holds outputs, not inputs.
            excluded = resolved(exclude) if exclude and resolved(exclude) != resolved(root) else None
            # Links are followed (a broken or looping one is kept, to be reported by name).
            files = [
                path for path in root.rglob("*")
                if path.suffix.lower() in self.input_suffixes and (path.is_file() or _dead_link(path))
                and not path.name.startswith(".")
                and not (excluded and resolved(path).is_relative_to(excluded))
            ]
            return root, sorted(files)
        files = [Path(path) for path in inputs]
        if not files:
            return Path("."), []
        # Named as given: a link is named by the link, never by where it leads.
        root = Path(os.path.commonpath([Path(os.path.abspath(path)).parent for path in files]))
        return root, files

    def check_not_feeding_back(self, root: Path, output_dir: Path | None) -> None:
        """Refuse an output folder that is the input folder when outputs have an input suffix:
        each output would be its own input (`compose IN IN`), and a rerun would read them."""
        if output_dir is None or output_dir.resolve() != root.resolve():
            return
        if set(self.output_suffixes.values()) & set(self.input_suffixes):
            raise UsageError(f"the output folder is the input folder ({root}): its outputs would be read "
                             f"as inputs; choose another output folder")

    def plan(self, inputs: Path | str | Sequence[Path | str], output_dir: Path | str) -> list[Job]:
        output_dir = Path(output_dir)
        root, files = self.find_inputs(inputs, exclude=output_dir)
        jobs = []
        for source in files:
            if not self.accepts(source):
                continue
            # The input's own path under the root, links not followed: two links to one file are two
            # inputs, and a link to a file outside the input folder is named by the link.
            relative = PurePosixPath(Path(os.path.abspath(source)).relative_to(os.path.abspath(root)).as_posix())
            targets = {role: output_dir / name for role, name in self.output_names(source, relative).items()}
            jobs.append(Job(source=source, relative=relative, targets=targets))
        return jobs

    def run(self, inputs: Path | str | Sequence[Path | str], output_dir: Path | str, *,
            overwrite: bool = False, workers: int = 1, progress: bool | None = None,
            replace_other_config: bool = False) -> StageReport:
        """Run the stage over every input; per-file failures are reported, not raised.
        `report.written` lists the main output of each input done by this run (none on a rerun
        that finds everything done), `skipped` and `failed` the inputs; `progress` (default: on a
        terminal only) shows a bar. Outputs of another configuration in `output_dir` are an
        error (StageConfigError), or with `replace_other_config` all made again (a pipeline
        that owns its folders, after its model changed)."""
        output_dir = Path(output_dir)
        check_output_dir(output_dir)
        jobs = self.plan(inputs, output_dir)
        if not overwrite and self.made_with_other_config(output_dir, jobs):
            if not replace_other_config:
                raise self._config_error(output_dir)
            overwrite = True

        report = StageReport(stage=self.name, output_dir=str(output_dir))
        todo, claimed = [], {}
        for job in jobs:
            clash = next((claimed[t] for t in job.targets.values() if t in claimed), None)
            claimed.update({t: job.source for t in job.targets.values()})
            problem = link_problem(job.source)
            in_the_way = next((t for t in job.targets.values() if t.is_dir()), None)
            outside = next((t for t in job.targets.values() if escapes(t, output_dir)), None)
            if problem is not None:
                _fail(report, FileError(str(job.source), problem))
            elif clash is not None:
                _fail(report, FileError(str(job.source), f"its output would overwrite that of {clash}"))
            elif any(_same_file(job.source, t) for t in job.targets.values()):
                _fail(report, FileError(str(job.source), "refusing to write over the input file"))
            elif outside is not None:
                _fail(report, FileError(str(job.source), f"its output {outside} would land outside the output "
                                                         f"folder (a link leads to {resolved(outside)})"))
            elif in_the_way is not None:
                _fail(report, FileError(str(job.source), f"a folder is in the way of its output: {in_the_way}"))
            elif not overwrite and job.done():
                report.skipped.append(str(job.source))
            else:
                todo.append(job)
        if todo:
            self.prepare()
        output_dir.mkdir(parents=True, exist_ok=True)
        self.record_config(output_dir, overwrite, jobs)
        remove_stale_partials(output_dir)

        bar = tqdm(total=len(todo), desc=self.name, unit="file",
                   disable=not todo or not (on_terminal() if progress is None else progress))
        for job, error in self._execute(todo, workers):
            if error is None:
                report.written.append(str(job.main_target))
            else:
                _fail(report, FileError(str(job.source), error))
                if not bar.disable:  # on a terminal, as it happens; the summary lists them all
                    bar.write(f"{self.name}: FAILED {printable(str(job.source))}: {printable(error)}")
            bar.update(1)
        bar.close()
        return report

    def _execute(self, jobs: list[Job], workers: int) -> Iterable[tuple[Job, str | None]]:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield job, run_job(self, job)
            return
        # spawn, not fork: a forked TensorFlow or thread pool is not safe to use.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(run_job, self, job): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()

    def record_config(self, output_dir: Path, overwrite: bool, jobs: Sequence[Job] = ()) -> None:
        """Write `<name>.stage.json`; refuse a folder whose outputs were made with another
        configuration (a record whose folder holds none of this stage's outputs is replaced)."""
        record_path = output_dir / f"{self.name}.stage.json"
        record = {"stage": self.name, "config": self._config_json()}
        if not overwrite and self.made_with_other_config(output_dir, jobs):
            raise self._config_error(output_dir)
        if not overwrite and record_path.exists() and self._recorded(record_path) == record["config"]:
            return
        write_text_atomic(record_path, json.dumps(record, indent=2, sort_keys=True) + "\n")

    def made_with_other_config(self, output_dir: Path, jobs: Sequence[Job] = ()) -> bool:
        """Whether `output_dir` holds this stage's outputs made with another configuration."""
        record_path = output_dir / f"{self.name}.stage.json"
        return (record_path.is_file() and self._recorded(record_path) != self._config_json()
                and self._holds_outputs(output_dir, jobs))

    def _config_json(self) -> dict:
        return json.loads(json.dumps(self.config(), default=str))

    @staticmethod
    def _recorded(record_path: Path) -> dict | None:
        try:
            return json.loads(record_path.read_text()).get("config")
        except ValueError:  # not JSON (e.g. cut short by a full disk): it vouches for nothing
            return None

    def _config_error(self, output_dir: Path) -> StageConfigError:
        return StageConfigError(f"{output_dir} holds '{self.name}' outputs made with another configuration "
                                f"({output_dir / f'{self.name}.stage.json'}); use a new output folder or overwrite")

    def _holds_outputs(self, output_dir: Path, jobs: Sequence[Job]) -> bool:
        if any(path.exists() for job in jobs for path in job.targets.values()):
            return True
        suffixes = set(self.output_suffixes.values())
        return any(path.suffix in suffixes and not path.name.startswith(".") for path in output_dir.rglob("*"))


def check_output_dir(output_dir: Path) -> None:
    """Refuse, before any work, an output folder that cannot be one: a file, or not writable."""
    existing = next((p for p in (output_dir, *output_dir.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        what = "the output folder" if existing == output_dir else f"{existing}, a folder above the output folder,"
        raise UsageError(f"{what} is a file, not a folder: {existing}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to {existing} (permission denied)")


def run_job(stage: Stage, job: Job) -> str | None:
    """Process one job with temporary outputs renamed into place; returns the failure reason."""
    temporaries = {role: partial_path(path) for role, path in job.targets.items()}
    try:
        for path in temporaries.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        stage.process(job, temporaries)
        missing = [role for role, path in temporaries.items() if not path.exists()]
        if missing:
            raise RuntimeError(f"stage wrote no {', '.join(missing)} output")
        for role, path in temporaries.items():
            os.replace(path, job.targets[role])
        return None
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the batch
        log.debug("%s failed on %s", stage.name, job.source, exc_info=True)
        folder = next(iter(job.targets.values())).parent
        if not isinstance(error, InputError) and disk_full(folder):
            return f"{DISK_FULL} (writing under {folder})"
        return describe_error(error)
    finally:
        for path in temporaries.values():
            path.unlink(missing_ok=True)


def content_id(path: Path | str) -> str:
    """A short hash of a file's bytes: outputs made from different checkpoints never pass for
    each other in a stage's recorded configuration."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def partial_path(final: Path) -> Path:
    """A hidden temporary name beside `final` that keeps its suffix (writers pick formats by it),
    naming the process and machine that writes it."""
    return final.with_name(f".{final.stem}{PARTIAL_MARK}{os.getpid()}-{_host_tag()}-{uuid.uuid4().hex[:8]}"
                           f"{final.suffix}")


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """This machine, in 8 hex digits: Dask workers on other machines share output folders."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """`data` at `path` whole or not at all; no temporary is left behind, even on a full disk."""
    temporary = partial_path(path)
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_model_atomic(model, path: Path) -> None:
    """A Keras model saved whole or not at all (never a half-written `.keras` at `path`)."""
    temporary = partial_path(path)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def remove_stale_partials(output_dir: Path) -> None:
    """Delete temporaries left by killed runs (their process no longer exists); another machine's
    (a Dask worker writing into a shared folder) are left alone, their processes unknown here."""
    for path in output_dir.rglob(f".*{PARTIAL_MARK}*"):
        fields = path.name.split(PARTIAL_MARK, 1)[1].split("-")
        pid, host = fields[0], fields[1] if len(fields) > 2 else _host_tag()  # older names: no machine
        if host == _host_tag() and not (pid.isdigit() and _process_alive(int(pid))):
            path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()
