"""What `w2m2w maestro retranscribe` takes, declared once as a frozen settings dataclass
(stages/settings.py). Light to import: no Beam, no TensorFlow."""

from __future__ import annotations

import dataclasses

from maestro.settings import composers_setting, years_setting
from stages import options
from stages.cli import check_paths, csv_list
from stages.settings import Settings, argument, setting


@dataclasses.dataclass(frozen=True)
class Retranscription(Settings):
    """Transcribe every recording of a MAESTRO-layout ROOT (any version's metadata; filter with --splits,
    --years, --composers) with a transcriber checkpoint through Beam's RunInference, writing OUT/<recording
    path>.midi and its mir_eval metrics against the dataset's MIDI, and OUT/retranscription.json. A rerun
    skips finished recordings; a bad one is reported and the rest go on. Other arguments are Beam pipeline
    options (e.g. --runner=DataflowRunner ...); without --runner it runs locally on all cores."""

    root: str = argument(None, "MAESTRO-layout dataset folder")
    out: str = argument(None, "output folder (local or gs://...)")
    checkpoint: str | None = setting(None, help="a .keras transcriber (default: the shipped one)")
    splits: tuple[str, ...] = setting((), csv_list, help="only these splits, comma-separated")
    years: tuple[int, ...] = years_setting()
    composers: tuple[str, ...] = composers_setting()
    batch_size: int = setting(4, options.COUNT, help="20 s windows per model call (default: 4)")

    def preflight(self, decoding=None) -> None:
        check_paths(self.root, self.out, {"transcriber": self.checkpoint})
