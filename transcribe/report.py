"""Benchmark reports: reference MIDI against one or more folders of estimated MIDI, scored with
the transcriber's own metric code (transcribe.metrics), written as report.json, a per-piece CSV
and a self-contained HTML page (summary, F1 distributions, breakdown by composer and year,
piano rolls of the best and worst pieces).

References come from a folder of MIDI or from a MAESTRO-layout root (whose metadata gives
composer, year and the audio's duration, to which references are cut). An estimate for a
reference is the file with the same relative path and any MIDI suffix; for a MAESTRO root, the
path of its recording (what `w2m2w transcribe` and `maestro retranscribe` write) or of its MIDI.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np

from stages.contract import write_text_atomic
from stages.midi import MIDI_SUFFIXES, notes_from_sequence, read_note_sequence
from transcribe.metrics import FAMILIES, mean_metrics, transcription_metrics


@dataclasses.dataclass(frozen=True)
class Reference:
    key: str  # relative path without suffix, the name of the piece in the report
    midi: Path
    candidates: tuple[str, ...]  # relative paths (without suffix) an estimate may have
    composer: str = ""
    year: str = ""
    duration: float | None = None  # cut the reference here (the audio's length)


def find_references(ref: Path) -> list[Reference]:
    if any(ref.glob("maestro-v*")):
        from maestro.metadata import Dataset

        dataset = Dataset.open(ref)
        return [Reference(key=str(PurePosixPath(r.audio_filename).with_suffix("")), midi=dataset.midi_path(r),
                          candidates=(str(PurePosixPath(r.audio_filename).with_suffix("")),
                                      str(PurePosixPath(r.midi_filename).with_suffix(""))),
                          composer=r.canonical_composer, year=str(r.year), duration=r.duration)
                for r in dataset.records]
    files = sorted(p for p in ref.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)
    return [Reference(key=(k := p.relative_to(ref).with_suffix("").as_posix()), midi=p, candidates=(k,))
            for p in files]


def find_estimate(folder: Path, reference: Reference) -> Path | None:
    for candidate in reference.candidates:
        for suffix in MIDI_SUFFIXES:
            path = folder / f"{candidate}{suffix}"
            if path.is_file():
                return path
    return None


def reference_notes(reference: Reference) -> np.ndarray:
    from transcribe.evaluate import reference_notes as cut_reference

    return cut_reference(reference.midi, reference.duration)


def score(references: Sequence[Reference], estimates: Sequence[Path]) -> dict:
    """{"systems": {name: {"mean", "pieces", "missing"}}} for every estimate folder."""
    systems = {}
    for folder in estimates:
        pieces, missing = [], []
        for reference in references:
            estimate_path = find_estimate(folder, reference)
            if estimate_path is None:
                missing.append(reference.key)
                continue
            metrics = transcription_metrics(reference_notes(reference),
                                            notes_from_sequence(read_note_sequence(estimate_path)))
            pieces.append({"piece": reference.key, "composer": reference.composer, "year": reference.year,
                           "estimate": str(estimate_path), **metrics})
        keys = [k for k in (pieces[0] if pieces else {}) if "/" in k]
        systems[folder.name or str(folder)] = {
            "mean": mean_metrics([{k: p[k] for k in keys} for p in pieces]),
            "pieces": pieces, "missing": missing, "folder": str(folder)}
    return {"systems": systems, "references": len(references)}


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _distribution_chart(result: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(FAMILIES), figsize=(4 * len(FAMILIES), 3), sharey=True)
    for axis, family in zip(axes, FAMILIES):
        for name, system in result["systems"].items():
            values = [p[f"{family}/f1"] for p in system["pieces"]]
            axis.hist(values, bins=np.linspace(0, 1, 21), alpha=0.5, label=name)
        axis.set_title(f"{family} F1")
        axis.set_xlabel("F1 per piece")
    axes[0].set_ylabel("pieces")
    axes[-1].legend(fontsize="small")
    figure.tight_layout()
    data = _png(figure)
    plt.close(figure)
    return data


def _piano_roll(reference: Reference, estimate: Path, title: str) -> str:
    from stages.plots import plot_piano_rolls
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        ref_notes = reference_notes(reference)
        est_notes = notes_from_sequence(read_note_sequence(estimate))
        end = min(30.0, float(ref_notes["offset_s"].max()) if len(ref_notes) else 30.0)  # the first 30 s
        path = plot_piano_rolls(Path(scratch) / "roll.png", ref_notes[ref_notes["onset_s"] < end],
                                est_notes[est_notes["onset_s"] < end], title=title, seconds=end)
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _table(header: list[str], rows: list[list]) -> str:
    cells = lambda row, tag: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)  # noqa: E731
    return "<table><tr>" + cells(header, "th") + "</tr>" + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows) + "</table>"


def _breakdown(result: dict, field: str) -> str:
    names = list(result["systems"])
    groups = sorted({p[field] for s in result["systems"].values() for p in s["pieces"] if p[field]})
    if not groups:
        return ""
    rows = []
    for group in groups:
        row = [group]
        for name in names:
            chosen = [p for p in result["systems"][name]["pieces"] if p[field] == group]
            row.append(f"{np.mean([p['note/f1'] for p in chosen]):.3f} ({len(chosen)})" if chosen else "-")
        rows.append(row)
    return f"<h2>Note F1 by {field}</h2>" + _table([field] + [f"{n} note F1 (pieces)" for n in names], rows)


def write_report(result: dict, references: Sequence[Reference], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.json", json.dumps(result, indent=1) + "\n")
    buffer = io.StringIO()
    fields = ["system", "piece", "composer", "year"] + [f"{f}/{m}" for f in FAMILIES for m in ("precision", "recall", "f1")]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for name, system in result["systems"].items():
        for piece in system["pieces"]:
            writer.writerow({"system": name, **{k: round(v, 4) if isinstance(v, float) else v for k, v in piece.items()}})
    write_text_atomic(out / "pieces.csv", buffer.getvalue())

    by_key = {r.key: r for r in references}
    summary = _table(["system", "pieces", "missing"] + [f"{f} F1" for f in FAMILIES],
                     [[name, len(s["pieces"]), len(s["missing"])] + [f"{s['mean'].get(f'{f}/f1', float('nan')):.4f}"
                                                                      for f in FAMILIES]
                      for name, s in result["systems"].items()])
    rolls = []
    for name, system in result["systems"].items():
        ranked = sorted(system["pieces"], key=lambda p: p["note/f1"])
        for label, piece in (("worst", ranked[0]), ("best", ranked[-1])) if ranked else ():
            image = _piano_roll(by_key[piece["piece"]], Path(piece["estimate"]),
                                f"{name}: {label} piece, note F1 {piece['note/f1']:.3f}")
            rolls.append(f"<h3>{html.escape(name)}: {label} ({html.escape(piece['piece'])})</h3><img src='{image}'>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Transcription benchmark</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} img{{max-width:100%}}</style></head>
<body><h1>Transcription benchmark</h1>
<p>{result['references']} reference pieces; metrics per piece (mir_eval: onsets within 50 ms; offsets within 20% or 50 ms;
velocities within 10% after rescaling; frames at 31.25 per second), references with the sustain pedal applied, then
averaged over pieces.</p>
<h2>Summary</h2>{summary}
<h2>F1 per piece</h2><img src="{_distribution_chart(result)}">
{_breakdown(result, "composer")}{_breakdown(result, "year")}
<h2>Piano rolls (first 30 s; grey: reference, outlines: estimate)</h2>{''.join(rolls)}
</body></html>"""
    write_text_atomic(out / "report.html", page)
    return [out / "report.json", out / "pieces.csv", out / "report.html"]
