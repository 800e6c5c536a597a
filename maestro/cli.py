"""The `w2m2w maestro render`, `preprocess`, `subset` and `fetch-samples` commands (`maestro
retranscribe`, which runs the transcriber, is batch/cli.py's); their options are the fields of
maestro/settings.py."""

from __future__ import annotations

from maestro import settings as s
from stages.cli import add_command


def add_render(commands) -> None:
    add_command(commands, "render", "build a MAESTRO-v3-layout dataset from a folder of MIDI (FluidSynth, Salamander)",
                s.DatasetRendering, "maestro.render:render_from", beam=True)


def add_preprocess(commands) -> None:
    add_command(commands, "preprocess", "Apache Beam: MAESTRO layout -> TFRecord shards per split", s.Preprocessing,
                "maestro.preprocess:preprocess_from", beam=True)


def add_subset(commands) -> None:
    add_command(commands, "subset", "every Nth performance of each split of a split CSV", s.Subset,
                "maestro.subsets:subset_from")


def add_fetch_samples(commands) -> None:
    add_command(commands, "fetch-samples",
                "download the Salamander grand's samples that `render --soundfonts salamander` plays",
                s.SampleFetching, "maestro.samples:fetch_from")
