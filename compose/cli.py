"""The composer's commands: `w2m2w compose`, `compose-tools`, `train compose` and `evaluate compose`;
their options are the fields of compose/settings.py."""

from __future__ import annotations

from compose import settings as s
from compose.config import SamplingSettings
from stages.cli import add_command


def add_compose(commands) -> None:
    add_command(commands, "compose", "continue MIDI, or write new pieces (Music Transformer)", s.ComposeFiles,
                "compose.stage:compose_files", SamplingSettings, after="primer_seconds")
    add_tools(commands)


def add_tools(commands) -> None:
    parser = commands.add_parser(
        "compose-tools", help="composer checkpoints and corpora: grow, widen, average, compact, encode",
        description="Change a trained composer without changing what it computes (grow, widen), average "
                    "saved composers, store one in float16, or encode MIDI as a token file for training "
                    "where note-seq is not installed. None overwrites an existing OUT.")
    tools = parser.add_subparsers(dest="tool", required=True, metavar="TOOL")
    add_command(tools, "grow", "more blocks, each new one a silent copy of the one before", s.Growth,
                "compose.growth:grow_from")
    add_command(tools, "widen", "twice the width, every unit duplicated", s.Widening, "compose.growth:widen_from")
    add_command(tools, "average", "the mean of several saved composers' weights", s.Averaging,
                "compose.weights:average_from")
    add_command(tools, "compact", "a copy with float16 weights and no optimizer (half the size)", s.Compaction,
                "compose.weights:compact_from")
    add_command(tools, "encode", "MIDI pieces -> a token file (.npz or .npz.xz)", s.Encoding,
                "compose.data:encode_from")


def add_train(models) -> None:
    add_command(models, "compose", "the Music Transformer (or a baseline) on MIDI or a token file",
                s.ComposerTraining, "compose.train:train_from")


def add_evaluate(models) -> None:
    add_command(models, "compose", "NLL per event on held-out MIDI", s.ComposerEvaluation,
                "compose.evaluate:evaluate_from")
