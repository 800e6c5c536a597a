"""`w2m2w example`: the main job on the bundled example, from MIDI to a scored transcription.
The libraries it runs load only when it runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stages.cli import cores
from stages.settings import Settings, argument

EXAMPLE_MIDI = Path("examples") / "midi"  # from the working folder: the repository root


@dataclasses.dataclass(frozen=True)
class Example(Settings):
    """Render the bundled example MIDI (examples/midi) into a small MAESTRO layout, preprocess it into
    TFRecords, transcribe the recording back to MIDI with the shipped transcriber and score it against the
    original, all under OUT (default: runs/example)."""

    out: Path = argument(Path, default=Path("runs") / "example", nargs="?")


def run_example(settings: Example, beam_args=()) -> int:
    """Render, preprocess, and where a transcriber is shipped transcribe and score; exit status 1
    when some file failed."""
    import json

    from maestro import preprocess
    from maestro.metadata import Dataset
    from maestro.render import render_dataset
    from stages.checkpoints import shipped_checkpoint
    from transcribe.evaluate import transcribe_and_score

    dataset = settings.out / "dataset"
    report = render_dataset(EXAMPLE_MIDI, dataset, workers=cores())
    print(report.summary())
    summary = preprocess.run(str(dataset), str(settings.out / "tfrecords"), beam_args=beam_args)
    print(json.dumps(summary["splits"], indent=2))
    ok = report.ok and summary["failed_count"] == 0
    if shipped_checkpoint("transcribe").exists():
        ok &= transcribe_and_score(Dataset.open(dataset), settings.out / "transcription")
    return 0 if ok else 1
