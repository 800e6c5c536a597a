"""Build a MAESTRO-v3-layout dataset from any folder of performance MIDI.

Each MIDI file becomes `<year>/<name>.midi` (a byte copy) and `<year>/<name>.wav` (rendered with
FluidSynth), listed in `maestro-v3.0.0.csv` and `maestro-v3.0.0.json`. An optional split file
(ASAP's `asap_split.csv`, or any CSV with `split` and a MIDI path column) assigns splits,
composers and titles; without one every file goes to `train`. `renders.csv` says how each file
was rendered (soundfont and augmentation), so results can be broken down by soundfont.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from maestro.augmentation import Augmentation, file_rng, render_midi
from maestro.metadata import SPLITS, Record, write_metadata
from maestro.soundfonts import TRAINING_SOUNDFONTS, check_timbre
from stages.contract import InputError, Job, Stage, StageReport, write_text_atomic
from stages.io.audio import audio_duration_seconds, write_wav
from stages.io.midi import MIDI_SUFFIXES, apply_sustain, read_note_sequence

# ASAP names composers by surname; MAESTRO by full name.
COMPOSER_NAMES = {
    "Bach": "Johann Sebastian Bach", "Balakirev": "Mily Balakirev", "Beethoven": "Ludwig van Beethoven",
    "Brahms": "Johannes Brahms", "Chopin": "Frédéric Chopin", "Debussy": "Claude Debussy",
    "Glinka": "Mikhail Glinka", "Haydn": "Joseph Haydn", "Liszt": "Franz Liszt",
    "Mozart": "Wolfgang Amadeus Mozart", "Prokofiev": "Sergei Prokofiev",
    "Rachmaninoff": "Sergei Rachmaninoff", "Ravel": "Maurice Ravel", "Schubert": "Franz Schubert",
    "Schumann": "Robert Schumann", "Scriabin": "Alexander Scriabin",
}
DEFAULT_YEAR = 2018  # year folder for files whose split file gives no MAESTRO year
RELEASE_TAIL_SECONDS = 1.0  # kept after the last (pedal-extended) note ends
RENDERS_CSV = "renders.csv"  # audio_filename -> soundfont and augmentation


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the split file says of one MIDI file."""

    split: str = "train"
    composer: str = ""
    title: str = ""
    year: int = DEFAULT_YEAR


def read_split_file(path: Path | str) -> dict[Path, Entry]:
    """Resolved MIDI path -> Entry, from a CSV whose paths are relative to the CSV's folder.

    Columns: `split` and `midi_performance` (ASAP) or `midi_filename`; optional `composer`,
    `title`, `year` or `maestro_midi_performance` (whose folder is the MAESTRO year).
    """
    path = Path(path)
    entries = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            midi = row.get("midi_performance") or row.get("midi_filename")
            split = (row.get("split") or "").strip()
            if not midi or split not in SPLITS:
                raise ValueError(f"{path}:{line}: needs a MIDI path and a split in {SPLITS}")
            year = row.get("year") or (row.get("maestro_midi_performance") or "").split("/")[0]
            composer = (row.get("composer") or "").strip()
            entries[(path.parent / midi).resolve()] = Entry(
                split=split,
                composer=COMPOSER_NAMES.get(composer, composer),
                title=(row.get("title") or "").replace("_", " ").strip(),
                year=int(year) if str(year).isdigit() else DEFAULT_YEAR,
            )
    return entries


def dataset_name(relative: PurePosixPath) -> str:
    """A flat, unique file name for a MIDI file's path inside the input folder."""
    parts = list(relative.with_suffix("").parts)
    if len(parts) > 1 and parts[0] == "midi":  # ASAP keeps its files under midi/
        parts = parts[1:]
    return "--".join(parts)


class RenderStage(Stage):
    """MIDI file -> `<year>/<name>.midi` + `<year>/<name>.wav` in a MAESTRO-v3 layout."""

    name = "maestro-render"
    input_suffixes = MIDI_SUFFIXES

    def __init__(self, entries: dict[Path, Entry] | None = None, *,
                 soundfonts: Sequence[str] = TRAINING_SOUNDFONTS, sample_rate_hz: int = 16_000,
                 augment_splits: Sequence[str] = ("train",), splits: Sequence[str] = SPLITS,
                 seed: int = 0, year: int = DEFAULT_YEAR):
        for soundfont in soundfonts:
            check_timbre(soundfont)  # fail now, not once per file
        self.entries = entries
        self.soundfonts = tuple(soundfonts)
        self.sample_rate_hz = sample_rate_hz
        self.augment_splits = tuple(augment_splits)
        self.splits = tuple(splits)
        self.seed = seed
        self.year = year

    def config(self) -> dict[str, Any]:
        return {"soundfonts": self.soundfonts, "sample_rate_hz": self.sample_rate_hz,
                "augment_splits": self.augment_splits, "seed": self.seed,
                "release_tail_seconds": RELEASE_TAIL_SECONDS}

    def entry(self, source: Path) -> Entry | None:
        if self.entries is None:
            return Entry(year=self.year)
        return self.entries.get(source.resolve())

    def accepts(self, source: Path) -> bool:
        """Only the files the split file lists, in the wanted splits."""
        entry = self.entry(source)
        return entry is not None and entry.split in self.splits

    def output_names(self, source: Path, relative: PurePosixPath) -> dict[str, PurePosixPath]:
        # Appended, not with_suffix: a dotted folder (ASAP's "Impromptu_op.90_D.899") would read as a suffix.
        stem = f"{self.entry(source).year}/{dataset_name(relative)}"
        return {"midi": PurePosixPath(stem + ".midi"), "audio": PurePosixPath(stem + ".wav")}

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        sequence = read_note_sequence(job.source)
        if not sequence.notes:
            raise InputError("MIDI file has no notes")
        rng = file_rng(self.seed, str(job.relative))
        augmentation = self.augmentation(job, rng)
        end_seconds = apply_sustain(sequence).total_time + RELEASE_TAIL_SECONDS
        audio = render_midi(job.source, augmentation, self.sample_rate_hz, rng, end_seconds)
        write_wav(temporaries["audio"], audio, self.sample_rate_hz)
        shutil.copyfile(job.source, temporaries["midi"])

    def augmentation(self, job: Job, rng=None) -> Augmentation:
        """The file's soundfont and effects: the first draw of its own seeded generator, so the
        manifest can say how finished files were rendered without rendering them again."""
        rng = file_rng(self.seed, str(job.relative)) if rng is None else rng
        return Augmentation.draw(rng, self.soundfonts, augment=self.entry(job.source).split in self.augment_splits)

    def record(self, job: Job, output_dir: Path) -> Record:
        entry = self.entry(job.source)
        return Record(
            canonical_composer=entry.composer,
            canonical_title=entry.title or job.relative.stem,
            split=entry.split,
            year=entry.year,
            midi_filename=job.targets["midi"].relative_to(output_dir).as_posix(),
            audio_filename=job.targets["audio"].relative_to(output_dir).as_posix(),
            duration=round(audio_duration_seconds(job.targets["audio"]), 6),
        )


def render_dataset(midi_dir: Path | str, out_root: Path | str, split_file: Path | str | None = None,
                   *, overwrite: bool = False, workers: int = 1, progress: bool = True,
                   beam_args: Sequence[str] = (), **settings) -> StageReport:
    """Render every (listed) MIDI file and write the v3 metadata of everything rendered so far;
    with Beam options, the files render on that Beam runner (a Dask cluster, say) instead of in
    `workers` processes."""
    out_root = Path(out_root)
    entries = read_split_file(split_file) if split_file else None
    stage = RenderStage(entries, **settings)
    if beam_args:
        from maestro.beam_stage import run_stage

        report = run_stage(stage, midi_dir, out_root, overwrite=overwrite, beam_args=beam_args)
    else:
        report = stage.run(midi_dir, out_root, overwrite=overwrite, workers=workers, progress=progress)
    done = [job for job in stage.plan(midi_dir, out_root) if job.done()]
    records = sorted((stage.record(job, out_root) for job in done), key=lambda r: r.midi_filename)
    write_metadata(out_root, records)
    write_renders(out_root, {job.targets["audio"].relative_to(out_root).as_posix(): stage.augmentation(job)
                             for job in done})
    return report


def write_renders(out_root: Path, augmentations: dict[str, Augmentation]) -> None:
    """`renders.csv`: one row per audio file, its soundfont and effects (empty: off)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["audio_filename", *(field.name for field in dataclasses.fields(Augmentation))])
    for name in sorted(augmentations):
        values = dataclasses.astuple(augmentations[name])
        writer.writerow([name, *("" if v is None else " ".join(map(str, v)) if isinstance(v, tuple) else v
                                 for v in values)])
    write_text_atomic(Path(out_root) / RENDERS_CSV, buffer.getvalue())


def read_soundfonts(root: Path | str) -> dict[str, str]:
    """audio_filename -> soundfont name, from a rendered dataset's `renders.csv` ({} without one,
    as for the real MAESTRO)."""
    path = Path(root) / RENDERS_CSV
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["audio_filename"]: row["soundfont"] for row in csv.DictReader(handle)}



def render_from(settings, beam_args: Sequence[str] = ()) -> int:
    """`w2m2w maestro render`: without MIDI_DIR, the ASAP dataset that W2M2W_ASAP_DIR names, and its split CSV."""
    import os

    from maestro.settings import ASAP_DIR
    from stages.cli import check_paths

    midi_dir, split_csv = settings.midi_dir, settings.split_csv
    if midi_dir is None:
        if not (asap := os.environ.get(ASAP_DIR)):
            raise ValueError(f"no MIDI_DIR given and {ASAP_DIR} is not set: name the folder of MIDI to render, "
                             f"or set {ASAP_DIR} to the ASAP dataset's folder")
        midi_dir = Path(asap)
        split_csv = split_csv or midi_dir / "asap_split.csv"
        check_paths(midi_dir, settings.out_root)
    augment = () if settings.augment_splits == ("none",) else settings.augment_splits
    report = render_dataset(midi_dir, settings.out_root, split_csv, overwrite=settings.overwrite,
                            workers=settings.workers, soundfonts=settings.soundfonts,
                            sample_rate_hz=settings.sample_rate, augment_splits=augment, splits=settings.splits,
                            seed=settings.seed, year=settings.year, beam_args=beam_args)
    print(report.summary())
    return 0 if report.ok else 1
