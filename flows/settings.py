"""What `w2m2w full` and `w2m2w maestro-t` take from the shell, declared once as frozen settings
dataclasses (stages/settings.py): their options are derived from the fields, their descriptions from
the docstrings. Light to import: no Prefect, no TensorFlow."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from stages import options
from stages.cli import check_paths
from stages.settings import Settings, argument, setting

STAGES = ("preprocess", "transcribe", "compose", "synthesize", "report")
TRANSCRIBER = "a .keras transcriber (default: the shipped one)"


def stage_list(text: str) -> list[str]:
    """argparse type of --stages: known stage names, comma-separated."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stage {', '.join(unknown) or '(none)'}; choose from {','.join(STAGES)}")
    return names


@dataclasses.dataclass(frozen=True)
class FullRun(Settings):
    """Run the wave2midi2wave Prefect flow in Prefect's ephemeral mode: preprocess (Beam) -> transcribe ->
    compose -> synthesize -> report, under OUT (one folder per stage, report.json). Tasks are cached on
    their inputs' contents: a rerun recomputes nothing, a killed run resumes."""

    inputs: Path | None = argument(
        Path, "folder of recordings (default: the bundled example, examples/recordings from the repository root)",
        nargs="?")
    out: Path = argument(Path, "run folder")
    seconds: float = setting(20.0, options.number(above=0, at_most=600),
                             help="new music per piece, seconds (default: 20; at most 600)")
    primer_seconds: float = setting(10.0, options.number(above=0, at_most=120),
                                    help="seconds of each transcription to continue (default: 10; at most 120)")
    finetune_steps: int = setting(0, options.COUNT_OR_ZERO, help="fine-tune the composer first (default: 0)")
    seed: int = setting(0, options.SEED)
    stages: str | list[str] = setting(",".join(STAGES), stage_list, help="comma-separated, from "
                                      "preprocess,transcribe,compose,synthesize,report (default: all)")
    transcriber: Path | None = setting(None, Path)
    composer: Path | None = setting(None, Path)
    synthesizer: Path | None = setting(None, Path)
    dask: str | None = setting(None, metavar="HOST:PORT", help="a Dask scheduler: run each stage as one task per "
                               "file on its workers (prefect-dask's DaskTaskRunner); IN and OUT must be on a "
                               "filesystem they share")

    def preflight(self, decoding=None) -> None:  # before Prefect and TensorFlow load
        check_paths(self.inputs, self.out, {"transcriber": self.transcriber, "composer": self.composer,
                                            "synthesizer": self.synthesizer})


@dataclasses.dataclass(frozen=True)
class MaestroT(Settings):
    """The Wave2Midi2Wave loop on a MAESTRO-layout DATASET (any version's metadata): its audio re-transcribed
    on Beam (OUT/transcription/), written as a MAESTRO-layout MIDI corpus with the same metadata, splits and
    file names (OUT/corpus/, transcribed_by.json names the transcriber), a composer trained on it
    (OUT/composer/; with --train-on ground-truth, on the dataset's own MIDI instead), scored in NLL per event
    on the ground-truth and the transcribed test split (OUT/evaluation.json), and a record and model card
    (OUT/maestro-t.json, OUT/model-card.md). Each step is cached on what it reads: a rerun recomputes
    nothing, a killed run resumes. Other arguments are Beam options for the re-transcription."""

    dataset: Path = argument(Path, "MAESTRO-layout dataset folder")
    out: Path = argument(Path, "run folder")
    transcriber: Path | None = setting(None, Path, help=TRANSCRIBER)
    transcriptions: Path | None = setting(
        None, Path, help="re-transcription folder (default: OUT/transcription): another run's, so that a second run "
                         "of the same dataset and transcriber (e.g. --train-on ground-truth) shares its work")
    no_note_ends: bool = setting(False, help="end transcribed notes at the frame and offset thresholds (see "
                                             "`w2m2w transcribe --help`)")
    composer_config: str = setting("default", ("tiny", "default", "paper"), help="the composer's size and "
                                   "training settings (with --from, its training settings)")
    architecture: str = setting("relative", ("relative", "absolute", "lstm"))
    train_on: str = setting("transcribed", ("transcribed", "ground-truth"), help="learn from the transcriptions "
                            "(default), or from the dataset's own MIDI: the baseline, scored the same way")
    steps: int = setting(1_750, options.COUNT,
                         help="optimizer steps; the learning rate decays over them (default: 1,750)")
    from_checkpoint: Path | None = setting(None, Path, "--from", "fine-tune this trained composer instead of "
                                                                 "training from random weights")
    seed: int = setting(0, int)
    steps_per_epoch: int = setting(250, options.COUNT)
    split: str = setting("test", ("train", "validation", "test"), help="split scored")
    chunk_length: int | None = setting(None, options.COUNT, help="tokens per scored chunk (default: the composer's "
                                       "training length; the paper: 2048)")
    max_pieces: int | None = setting(None, options.COUNT, help="score an even spread of this many pieces")
    raw_only: bool = setting(False, help="score the raw probability only (faster)")

    def preflight(self) -> None:  # before Prefect and TensorFlow load
        from maestro.metadata import find_metadata

        check_paths(self.dataset, self.out, {"transcriber": self.transcriber, "composer": self.from_checkpoint})
        find_metadata(self.dataset)  # a MAESTRO layout, or one line saying it is not
