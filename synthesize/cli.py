"""The synthesizer's commands: `w2m2w synthesize`, `train synthesize` and `evaluate synthesize`;
their options are the fields of synthesize/settings.py."""

from __future__ import annotations

from stages.cli import add_command
from synthesize import settings as s
from synthesize.config import RenderSettings


def add_synthesize(commands) -> None:
    add_command(commands, "synthesize", "MIDI -> piano audio (WaveNet)", s.SynthesizeFiles,
                "synthesize.stage:synthesize_files", RenderSettings, after="checkpoint")


def add_train(models) -> None:
    add_command(models, "synthesize", "the WaveNet on a rendered MAESTRO-layout dataset", s.SynthesizerTraining,
                "synthesize.train:train_from")


def add_evaluate(models) -> None:
    add_command(models, "synthesize", "round-trip note F1 and log-mel distance on held-out MIDI",
                s.SynthesizerEvaluation, "synthesize.evaluate:evaluate_from", RenderSettings, skip=("seed",),
                after="transcriber")
