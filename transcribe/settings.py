"""What each transcriber job takes, declared once as frozen settings dataclasses (stages/settings.py):
`w2m2w` derives its options from the fields and its descriptions from the docstrings, and the job
functions that `w2m2w` names take the objects. Light to import: no TensorFlow."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stages import options
from stages.settings import Settings, argument, setting

CACHE_HELP = "feature cache folder (default: TFRECORDS/transcription-cache)"
PREPROCESSED = "output folder of `w2m2w maestro preprocess`"


def checkpoint_option(what: str = "a .keras transcriber", **argparse_options):
    return setting(None, Path, "--checkpoint", f"{what} (default: the shipped one)", **argparse_options)


@dataclasses.dataclass(frozen=True)
class TranscribeFiles(Settings):
    """Transcribe recordings (WAV, FLAC, MP3, OGG, ...; any sample rate and channel count) to MIDI
    under OUT: a recording given by name becomes OUT/<name>.midi, a folder's recordings mirror its tree
    under OUT. Finished files are skipped; a bad file is reported and the rest go on. The shipped
    checkpoint decodes at thresholds tuned on validation, with an onset rescorer that decides where notes
    start and where they stop; the options below override them."""

    inputs: list[Path] = argument(Path, "recordings and/or folders of recordings", nargs="+", metavar="IN")
    out: Path = argument(Path, "output folder", metavar="OUT")
    checkpoint: Path | None = checkpoint_option()
    save_probabilities: bool = setting(
        False, help="also write the model's probabilities beside each MIDI (.npz: onsets, offsets, frames, "
                    "velocities, (frames, 88) float16 each, and frames_per_second)")
    pedal: str = setting(
        "baked", ("baked", "cc64"),
        help="baked (default): notes last as long as they sound, the sustain pedal's hold included (the MAESTRO "
             "protocol; best for playback without a pedal); cc64: the pedal network writes sustain-pedal (CC 64) "
             "events and notes end where their keys were let go (for notation and for playback with the pedal; "
             "the pedal network is rough so far: presses within 50 ms F1 0.15, see docs/transcribe.md)")
    max_seconds: float = setting(
        7200.0, options.POSITIVE, help="refuse recordings longer than this, read from their headers before "
                                       "decoding (default: 7200, two hours: about 600 MB of memory)")
    sequence: bool = setting(False, help="also write the NoteSequence (.pb)")
    csv: bool = setting(False, help="also write the notes as CSV")
    overwrite: bool = setting(False, help="transcribe again files already done")

    def preflight(self, decoding=None) -> None:
        from stages.cli import check_paths

        check_paths(self.inputs, self.out, {"transcriber": self.checkpoint})


@dataclasses.dataclass(frozen=True)
class TranscriberTraining(Settings):
    """Train Onsets and Frames on random crops of the transcription TFRecords (train split), scoring
    validation spans with mir_eval after every epoch. RUN_DIR gets best.keras (best validation note F1),
    last.keras, history.csv and TensorBoard logs; rerunning the same command resumes."""

    tfrecords: Path = argument(Path, PREPROCESSED)
    run_dir: Path = argument(Path)
    config: str = setting("default", ("tiny", "default", "paper"))
    steps: int = setting(20_000, options.COUNT, help="training steps in all (default: 20000)")
    steps_per_epoch: int = setting(250, options.COUNT, help="steps between validations")
    validation_spans: int = setting(32, options.COUNT, help="validation examples scored")
    learning_rate: float | None = setting(None, options.LEARNING_RATE,
                                          help="initial learning rate (default: the config's)")
    low_register_weight: float | None = setting(
        None, options.POSITIVE, metavar="W",
        help="weigh the onset and frame losses on keys below C3 W times the others' (default: the config's, 1)")
    initial_weights: Path | None = setting(
        None, Path, "--from", "start from this trained transcriber's weights (same config) instead of at random")
    cache: Path | None = setting(None, Path, help=CACHE_HELP)
    seed: int = setting(0, options.SEED)


@dataclasses.dataclass(frozen=True)
class PedalTraining(Settings):
    """Train the sustain-pedal network (CC 64: down, pressed, released per frame) on random crops of the
    transcription TFRecords, whose sequences carry the pedal, scoring pedal F1 (a press within 50 ms) on
    validation spans after every epoch. RUN_DIR gets best.keras; ship it beside a transcriber as
    CHECKPOINT.pedal.keras. Rerunning resumes."""

    tfrecords: Path = argument(Path, PREPROCESSED)
    run_dir: Path = argument(Path)
    config: str = setting("default", ("tiny", "default"))
    steps: int = setting(5_000, options.COUNT, help="training steps in all (default: 5000)")
    steps_per_epoch: int = setting(250, options.COUNT, help="steps between validations")
    cache: Path | None = setting(None, Path, help=CACHE_HELP)
    seed: int = setting(0, options.SEED)


@dataclasses.dataclass(frozen=True)
class RescorerTraining(Settings):
    """Train the onset rescorer of a transcriber checkpoint on its own predictions on the train split of
    TRAIN_DATASET, choosing its acceptance threshold on the validation split of VALIDATION_DATASET (both
    `w2m2w maestro render` outputs, whole recordings); with --note-ends also its note-end network. Logs
    validation F1 without the rescorer and at each threshold; --apply writes it beside the checkpoint
    (CHECKPOINT.rescorer.keras and .json)."""

    train_dataset: Path = argument(Path, "MAESTRO-layout dataset (its train split)")
    validation_dataset: Path = argument(Path, "MAESTRO-layout dataset (its validation split)")
    checkpoint: Path | None = checkpoint_option("the transcriber")
    cache: Path | None = setting(None, Path, help="folder for the predictions (reused when rerun)")
    train_pieces: int | None = setting(None, options.COUNT, help="use only the first N train recordings")
    candidate_threshold: float = setting(0.05, options.number(above=0, below=1),
                                         help="onset head probability that makes a candidate (default: 0.05)")
    epochs: int = setting(8, options.COUNT)
    seed: int = setting(0, options.SEED)
    note_ends: bool = setting(False, help="also train the note-end network")
    end_epochs: int = setting(4, options.COUNT, help="the note-end network's epochs")
    apply: bool = setting(False, help="write the rescorer beside the checkpoint")


@dataclasses.dataclass(frozen=True)
class ThresholdTuning(Settings):
    """Choose the transcriber's onset, frame and offset thresholds, the offset head's frame gate and the
    offset correction on the validation split of DATASET (a MAESTRO-layout folder), ranked by note F1 +
    frame F1 + note-with-offset F1. --apply writes them into the checkpoint's config (weights unchanged)
    and its JSON record. The onset rescorer is left out (it decides onsets in place of the onset
    threshold)."""

    dataset: Path = argument(Path, "MAESTRO-layout dataset (its validation split)")
    checkpoint: Path | None = checkpoint_option("the transcriber")
    pieces: int = setting(14, options.COUNT, help="validation recordings used (default: 14)")
    seconds: float = setting(60.0, options.POSITIVE, help="seconds of each used (default: 60)")
    apply: bool = setting(False, help="write the best settings into the checkpoint")


@dataclasses.dataclass(frozen=True)
class PedalTuning(Settings):
    """Choose the sustain-pedal network's decoding settings (down threshold, press/release threshold,
    shortest press or gap) on validation spans of TFRECORDS, ranked by press F1 + press-and-release F1.
    --apply writes them into the checkpoint's config (weights unchanged)."""

    tfrecords: Path = argument(Path, PREPROCESSED)
    checkpoint: Path | None = setting(None, Path, help="the pedal network (.keras)", required=True)
    spans: int = setting(48, options.COUNT, help="validation spans used (default: 48)")
    cache: Path | None = setting(None, Path, help=CACHE_HELP)
    apply: bool = setting(False, help="write the best settings into the checkpoint")

    def preflight(self) -> None:
        from stages.cli import check_paths

        check_paths(self.tfrecords, None, {"pedal network": self.checkpoint})


@dataclasses.dataclass(frozen=True)
class TranscriberEvaluation(Settings):
    """Transcribe every recording of a split of a MAESTRO-layout ROOT and score it against its MIDI
    (sustain applied, cut to the audio) with mir_eval, per piece, then averaged over pieces (the MAESTRO
    paper's protocol). Prints the mean as JSON; --out writes the per-piece figures too."""

    root: Path = argument(Path, "MAESTRO-layout dataset")
    split: str = setting("test")
    checkpoint: Path | None = checkpoint_option()
    excerpt_seconds: float | None = setting(None, options.POSITIVE, help="score only the first N seconds of each piece")
    limit: int | None = setting(None, options.COUNT, help="only the first N pieces")
    out: Path | None = setting(None, Path, help="write the full evaluation (JSON) here")


@dataclasses.dataclass(frozen=True)
class Benchmark(Settings):
    """Score labelled folders of estimated MIDI (ours, basic-pitch's, magenta's, ...) against reference MIDI
    (a folder, or a MAESTRO root whose metadata adds composer, year and audio length) with the MAESTRO
    paper's metrics, per piece and averaged over pieces, side by side. Writes report.json, pieces.csv and a
    self-contained report.html under --out. Example: w2m2w benchmark ref/ ours=out/ basic-pitch=bp-out/
    --out report/"""

    reference: Path = argument(Path, "reference MIDI folder or MAESTRO root")
    estimates: list[str] = argument(
        None, "a folder of estimated MIDI and its label in the report (unique); a bare DIR is labelled with its "
              "folder name", nargs="+", metavar="NAME=DIR")
    out: Path | None = setting(None, Path, help="report folder", required=True)
    estimate_naming: str = setting(
        "auto", ("auto", "same", "basic-pitch", "magenta"),
        help="how an estimate is named after its reference <name>: same (<name>.mid/.midi), basic-pitch "
             "(<name>_basic_pitch.mid), magenta (<name>.wav.midi or <name>.midi); auto (default) tries each; "
             "nested or flat folders alike")
    sustain_estimates: str = setting(
        "auto", ("auto", "on", "off"),
        help="apply the sustain pedal (CC 64) to the estimates before scoring, as to the references: auto "
             "(default) where an estimate's file has pedal events, on, or off (score notes as written, for "
             "tools that also hold the notes the pedal sustains)")
