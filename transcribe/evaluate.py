"""Score a transcriber on a MAESTRO-layout split, per the MAESTRO paper's protocol: metrics per
piece against the sustain-extended reference MIDI (cut to the audio), then averaged over pieces.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from maestro.metadata import Dataset
from maestro.render import read_soundfonts
from stages.io.audio import load_audio
from stages.io.midi import NOTE_DTYPE, apply_sustain, notes_from_sequence, read_note_sequence
from transcribe.metrics import mean_metrics, transcription_metrics
from transcribe.transcriber import Transcriber


def reference_notes(midi_path: Path, end_seconds: float | None) -> np.ndarray:
    """Sustain-extended notes that begin before `end_seconds` (the audio's end), offsets cut
    there; all of them when `end_seconds` is None."""
    notes = notes_from_sequence(apply_sustain(read_note_sequence(midi_path)))
    if end_seconds is None:
        return notes
    notes = notes[notes["onset_s"] < end_seconds].copy()
    notes["offset_s"] = np.minimum(notes["offset_s"], end_seconds)
    return notes[notes["offset_s"] > notes["onset_s"]].astype(NOTE_DTYPE)


@dataclasses.dataclass
class Evaluation:
    mean: dict[str, float]
    pieces: list[dict]
    audio_seconds: float
    wall_seconds: float
    # Means over the pieces rendered with each soundfont (a rendered dataset's renders.csv).
    by_soundfont: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def evaluate(transcriber: Transcriber, root: Path | str, split: str = "test",
             excerpt_seconds: float | None = None, limit: int | None = None, progress: bool = True) -> Evaluation:
    """Transcribe every recording of a split (or its first `excerpt_seconds`) and score it."""
    dataset = Dataset.open(root)
    soundfonts = read_soundfonts(root)
    records = dataset.select(splits=[split])[:limit]
    if not records:
        raise ValueError(f"no {split} records in {root}")
    pieces, audio_seconds, start = [], 0.0, time.perf_counter()
    for record in tqdm(records, desc=f"evaluate {split}", unit="piece", disable=not progress):
        audio = load_audio(dataset.audio_path(record), transcriber.config.sample_rate_hz,
                           duration_seconds=excerpt_seconds)
        seconds = len(audio) / transcriber.config.sample_rate_hz
        estimate = transcriber.transcribe(audio)
        reference = reference_notes(dataset.midi_path(record), seconds)
        metrics = transcription_metrics(reference, estimate, transcriber.config.frames_per_second)
        soundfont = {"soundfont": soundfonts[record.audio_filename]} if record.audio_filename in soundfonts else {}
        pieces.append({"audio_filename": record.audio_filename, "composer": record.canonical_composer,
                       "title": record.canonical_title, "seconds": round(seconds, 3), **soundfont, **metrics})
        audio_seconds += seconds
    metric_keys = [k for k in pieces[0] if "/" in k]

    def mean_of(selected):
        return mean_metrics([{k: p[k] for k in metric_keys} for p in selected])

    by_soundfont = {name: mean_of([p for p in pieces if p.get("soundfont") == name])
                    for name in sorted({p["soundfont"] for p in pieces if "soundfont" in p})}
    return Evaluation(mean_of(pieces), pieces, audio_seconds, time.perf_counter() - start, by_soundfont)


def evaluate_from(settings, decoding) -> int:
    """`w2m2w evaluate transcribe`: the mean on stderr, the summary as JSON on stdout, and with
    `settings.out` the per-piece figures as well."""
    import json
    import sys

    from stages.checkpoints import checkpoint_for
    from transcribe.metrics import format_metrics

    checkpoint = checkpoint_for("transcribe", settings.checkpoint)
    decoding.check_for(checkpoint)
    result = evaluate(Transcriber.load(checkpoint, decoding), settings.root, settings.split, settings.excerpt_seconds,
                      settings.limit)
    print(format_metrics(result.mean), file=sys.stderr)
    summary = {"split": settings.split, "pieces": len(result.pieces), "audio_seconds": round(result.audio_seconds, 1),
               "excerpt_seconds": settings.excerpt_seconds, **{k: round(v, 4) for k, v in result.mean.items()}}
    if result.by_soundfont:  # a rendered dataset: how each soundfont fared
        summary["by_soundfont"] = {name: {k: round(v, 4) for k, v in metrics.items()}
                                   for name, metrics in result.by_soundfont.items()}
    if settings.out:
        settings.out.parent.mkdir(parents=True, exist_ok=True)
        settings.out.write_text(json.dumps({**summary, "per_piece": dataclasses.asdict(result)["pieces"]}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def transcribe_and_score(dataset: Dataset, out: Path, checkpoint: Path | None = None) -> bool:
    """Transcribe a dataset's recordings, score them against its MIDI and draw piano rolls."""
    from stages.checkpoints import checkpoint_for
    from stages.io.plots import plot_piano_rolls
    from transcribe.metrics import format_metrics
    from transcribe.stage import TranscribeStage

    stage = TranscribeStage(checkpoint_for("transcribe", checkpoint), notes_csv=True)
    report = stage.run(dataset.root, out)  # outputs mirror the dataset: <year>/<name>.midi
    print(report.summary())
    scores = []
    for record in dataset.records:
        midi = out / Path(record.audio_filename).with_suffix(".midi")
        if not midi.exists():
            continue
        estimate = notes_from_sequence(read_note_sequence(midi))
        reference = notes_from_sequence(apply_sustain(read_note_sequence(dataset.midi_path(record))))
        scores.append(transcription_metrics(reference, estimate))
        picture = plot_piano_rolls(midi.with_suffix(".png"), reference, estimate,
                                   title=Path(record.audio_filename).stem)
        print(f"{midi}  (piano roll: {picture})")
    if scores:
        print(format_metrics(mean_metrics(scores)))
    return report.ok
