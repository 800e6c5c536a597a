"""The transcriber's commands: `w2m2w transcribe`, `benchmark`, `train transcribe|pedal|rescorer`,
`tune transcribe|pedal` and `evaluate transcribe`; their options are the fields of transcribe/settings.py."""

from __future__ import annotations

from stages.cli import add_command
from transcribe import settings as s
from transcribe.config import DecodingSettings


def add_transcribe(commands) -> None:
    add_command(commands, "transcribe", "piano recordings -> MIDI (Onsets and Frames)", s.TranscribeFiles,
                "transcribe.stage:transcribe_files", DecodingSettings, after="checkpoint")


def add_benchmark(commands) -> None:
    add_command(commands, "benchmark", "mir_eval report: reference MIDI against estimated MIDI of one or more tools",
                s.Benchmark, "transcribe.report:benchmark")


def add_train(models) -> None:
    add_command(models, "transcribe", "Onsets and Frames on `w2m2w maestro preprocess` TFRecords",
                s.TranscriberTraining, "transcribe.onsets_frames.training:train_from")


def add_train_pedal(models) -> None:
    add_command(models, "pedal", "the sustain-pedal network on `w2m2w maestro preprocess` TFRecords",
                s.PedalTraining, "transcribe.pedal.training:train_pedal_from")


def add_train_rescorer(models) -> None:
    add_command(models, "rescorer", "the onset rescorer (and note-end network) of a transcriber checkpoint",
                s.RescorerTraining, "transcribe.rescorer.training:train_rescorer_from")


def add_tune(models) -> None:
    add_command(models, "transcribe", "the transcriber's decoding thresholds, on validation recordings",
                s.ThresholdTuning, "transcribe.tuning:tune_from")


def add_tune_pedal(models) -> None:
    add_command(models, "pedal", "the pedal network's decoding settings, on validation spans", s.PedalTuning,
                "transcribe.pedal.training:tune_pedal_from")


def add_evaluate(models) -> None:
    add_command(models, "transcribe", "mir_eval metrics on a MAESTRO-layout split", s.TranscriberEvaluation,
                "transcribe.evaluate:evaluate_from", DecodingSettings, skip=("midi_tempo",), after="checkpoint")
