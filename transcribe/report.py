"""Benchmark reports: reference MIDI against one or more labelled folders of estimated MIDI (ours
or another tool's), scored with the transcriber's own metric code (transcribe.metrics), written as
report.json, a per-piece CSV and a self-contained HTML page (summary, F1 distributions, breakdown
by composer and year, piano rolls of the best and worst pieces).

References come from a folder of MIDI or from a MAESTRO-layout root (whose metadata gives
composer, year and the audio's duration, to which references are cut). An estimate for a
reference is found by its relative path (or, in a flat folder, its name) under one of the naming
patterns in NAMINGS: ours (`<name>.mid[i]`), basic-pitch's (`<name>_basic_pitch.mid`) or
magenta's (`<name>.wav.midi`); for a MAESTRO root, the name of its recording (what `w2m2w
transcribe` and `maestro retranscribe` write) or of its MIDI.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

import numpy as np

from stages.contract import InputError, write_text_atomic
from stages.io.audio import AUDIO_SUFFIXES
from stages.io.midi import MIDI_SUFFIXES, SUSTAIN_CONTROL, apply_sustain, notes_from_sequence, read_note_sequence
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


# What each naming pattern calls the estimate of the piece `<name>` (a relative path without suffix).
NAMINGS = {
    "same": lambda name: [f"{name}{suffix}" for suffix in MIDI_SUFFIXES],
    "basic-pitch": lambda name: [f"{name}_basic_pitch{suffix}" for suffix in MIDI_SUFFIXES],
    "magenta": lambda name: [f"{name}{audio}.midi" for audio in AUDIO_SUFFIXES] + [f"{name}.midi"],
}
SUSTAIN_CHOICES = ("auto", "on", "off")


def estimate_names(candidate: str, naming: str = "auto") -> list[str]:
    """The file names (relative paths) an estimate of `candidate` may have under a naming pattern;
    "auto" tries them all, ours first."""
    patterns = list(NAMINGS.values()) if naming == "auto" else [NAMINGS[naming]]
    names = [name for pattern in patterns for name in pattern(candidate)]
    return list(dict.fromkeys(names))


def find_estimate(folder: Path, reference: Reference, naming: str = "auto") -> Path | None:
    """The estimate of a reference in a folder: at its relative path, else by its name alone (tools
    that write every output into one flat folder)."""
    candidates = list(reference.candidates)
    candidates += [PurePosixPath(c).name for c in reference.candidates if PurePosixPath(c).name != c]
    for candidate in candidates:
        for name in estimate_names(candidate, naming):
            path = folder / name
            if path.is_file():
                return path
    return None


def labelled_folders(items: Sequence[str | Path]) -> dict[str, Path]:
    """["NAME=DIR" or "DIR", ...] -> {name: folder}; a bare folder is labelled with its name.
    Labels must be unique: the report's columns and rows are keyed by them."""
    folders: dict[str, Path] = {}
    for item in items:
        text = str(item)
        label, separator, folder = text.partition("=")
        if not separator or not label or Path(text).exists():
            folder, label = text, Path(text).name or text
        if label in folders:
            raise ValueError(f"estimate label {label!r} names both {folders[label]} and {folder}: give each "
                             "folder a label of its own, as NAME=DIR")
        folders[label] = Path(folder)
    return folders


def reference_notes(reference: Reference) -> np.ndarray:
    from transcribe.evaluate import reference_notes as cut_reference

    return cut_reference(reference.midi, reference.duration)


def estimate_notes(path: Path, sustain: str = "auto") -> tuple[np.ndarray, bool]:
    """(notes, whether the sustain pedal was applied) of an estimate. "auto" applies the pedal
    where the file has pedal events (CC 64) and records it; "off" scores the notes as written
    (for tools that write the pedal and also hold the notes it sustains)."""
    if sustain not in SUSTAIN_CHOICES:
        raise ValueError(f"sustain must be one of {SUSTAIN_CHOICES}, not {sustain!r}")
    sequence = read_note_sequence(path)
    has_pedal = any(c.control_number == SUSTAIN_CONTROL for c in sequence.control_changes)
    applied = sustain == "on" or (sustain == "auto" and has_pedal)
    return notes_from_sequence(apply_sustain(sequence) if applied else sequence), applied and has_pedal


def score(references: Sequence[Reference], estimates: Mapping[str, Path] | Sequence[Path], naming: str = "auto",
          sustain: str = "auto") -> dict:
    """{"systems": {label: {"mean", "pieces", "missing"}}} for every estimate folder (a mapping of
    label -> folder, or folders labelled by their names)."""
    if naming != "auto" and naming not in NAMINGS:
        raise ValueError(f"estimate naming must be auto or one of {sorted(NAMINGS)}, not {naming!r}")
    folders = dict(estimates) if isinstance(estimates, Mapping) else labelled_folders(estimates)
    matched = {}
    for label, folder in folders.items():
        if not folder.is_dir():
            raise FileNotFoundError(f"estimate folder not found: {folder}")
        matched[label] = [(reference, find_estimate(folder, reference, naming)) for reference in references]
    systems = {}
    for label, folder in folders.items():
        pieces, missing, failed, sustained = [], [], [], 0
        for reference, estimate_path in matched[label]:
            if estimate_path is None:
                missing.append(reference.key)
                continue
            try:  # one unreadable file is named, the rest are scored
                notes, applied = estimate_notes(estimate_path, sustain)
            except InputError as error:
                failed.append({"piece": reference.key, "estimate": str(estimate_path), "reason": str(error)})
                continue
            try:
                metrics = transcription_metrics(reference_notes(reference), notes)
            except InputError as error:
                failed.append({"piece": reference.key, "estimate": str(reference.midi),
                               "reason": f"the reference: {error}"})
                continue
            sustained += applied
            pieces.append({"piece": reference.key, "composer": reference.composer, "year": reference.year,
                           "estimate": str(estimate_path), **metrics})
        keys = [k for k in (pieces[0] if pieces else {}) if "/" in k]
        systems[label] = {"mean": mean_metrics([{k: p[k] for k in keys} for p in pieces]), "pieces": pieces,
                          "missing": missing, "failed": failed, "folder": str(folder),
                          "estimates_with_pedal_applied": sustained}
    return {"systems": systems, "references": len(references), "estimate_naming": naming,
            "sustain_estimates": sustain}


def check_shared_names(references: Sequence[Reference], folders: Mapping[str, Path], naming: str = "auto") -> None:
    """ValueError for an estimate folder none of whose files is named after a reference piece (the
    wrong folder, or another naming): a report of it would be empty."""
    for folder in folders.values():
        if references and folder.is_dir() and not any(find_estimate(folder, r, naming) for r in references):
            example = estimate_names(references[0].candidates[0], naming)[0]
            raise ValueError(f"no estimate in {folder} is named after a reference piece (the first would be "
                             f"{folder / example}); see --estimate-naming")


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


def _piano_roll(reference: Reference, estimate: Path, title: str, sustain: str) -> str:
    import tempfile

    from stages.io.plots import plot_piano_rolls

    with tempfile.TemporaryDirectory() as scratch:
        ref_notes = reference_notes(reference)
        est_notes, _ = estimate_notes(estimate, sustain)
        end = min(30.0, float(ref_notes["offset_s"].max()) if len(ref_notes) else 30.0)  # the first 30 s
        path = plot_piano_rolls(Path(scratch) / "roll.png", ref_notes[ref_notes["onset_s"] < end],
                                est_notes[est_notes["onset_s"] < end], title=title, seconds=end)
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _table(header: list[str], rows: list[list]) -> str:
    cells = lambda row, tag: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)  # noqa: E731
    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return "<table><tr>" + cells(header, "th") + "</tr>" + body + "</table>"


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


DEFAULT_TITLE = "Transcription benchmark"
DEFAULT_INTRO = "reference MIDI against the estimates of each system"


def write_report(result: dict, references: Sequence[Reference], out: Path, title: str = DEFAULT_TITLE,
                 intro: str = DEFAULT_INTRO) -> list[Path]:
    """report.json, pieces.csv and report.html under `out`; `title` and `intro` (one sentence:
    what is compared with what) head the page, e.g. for round trips."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.json", json.dumps({"title": title, **result}, indent=1) + "\n")
    buffer = io.StringIO()
    fields = ["system", "piece", "composer", "year"] + [f"{f}/{m}" for f in FAMILIES
                                                         for m in ("precision", "recall", "f1")]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for name, system in result["systems"].items():
        for piece in system["pieces"]:
            writer.writerow({"system": name,
                             **{k: round(v, 4) if isinstance(v, float) else v for k, v in piece.items()}})
    write_text_atomic(out / "pieces.csv", buffer.getvalue())

    by_key = {r.key: r for r in references}
    summary = _table(["system", "pieces", "missing"] + [f"{f} F1" for f in FAMILIES],
                     [[name, len(s["pieces"]), len(s["missing"])] + [f"{s['mean'].get(f'{f}/f1', float('nan')):.4f}"
                                                                      for f in FAMILIES]
                      for name, s in result["systems"].items()])
    sustain = result.get("sustain_estimates", "off")
    rolls = []
    for name, system in result["systems"].items():
        ranked = sorted(system["pieces"], key=lambda p: p["note/f1"])
        # Best and worst only mean something among several pieces.
        shown = [("worst", ranked[0]), ("best", ranked[-1])] if len(ranked) > 1 else [("", p) for p in ranked]
        for label, piece in shown:
            caption = f"{name}: {label + ' piece, ' if label else ''}note F1 {piece['note/f1']:.3f}"
            image = _piano_roll(by_key[piece["piece"]], Path(piece["estimate"]), caption, sustain)
            heading = f"{name}: {label} ({piece['piece']})" if label else f"{name}: {piece['piece']}"
            rolls.append(f"<h3>{html.escape(heading)}</h3><img src='{image}'>")
    pedal = {"auto": "estimates with the pedal applied where their files have one",
             "on": "estimates with the pedal applied", "off": "estimates scored as written"}[sustain]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{html.escape(intro[:1].upper() + intro[1:])}: {result['references']} reference pieces; metrics per piece
(mir_eval: onsets within 50 ms; offsets within 20% or 50 ms; velocities within 10% after rescaling; frames at 31.25
per second), references with the sustain pedal applied, {pedal}, then averaged over pieces.</p>
<h2>Summary</h2>{summary}
<h2>F1 per piece</h2><img src="{_distribution_chart(result)}">
{_breakdown(result, "composer")}{_breakdown(result, "year")}
<h2>Piano rolls (first 30 s; grey: reference, outlines: estimate)</h2>{''.join(rolls)}
</body></html>"""
    write_text_atomic(out / "report.html", page)
    return [out / "report.json", out / "pieces.csv", out / "report.html"]


def benchmark(settings) -> int:
    """`w2m2w benchmark`: each system's figures on the terminal, the report under `settings.out`;
    exit status 1 when some estimate failed."""
    from stages.cli import check_paths
    from stages.contract import printable
    from transcribe.metrics import format_metrics

    estimates = labelled_folders(settings.estimates)  # NAME=DIR -> {NAME: DIR}
    check_paths([settings.reference, *estimates.values()], settings.out)
    references = find_references(settings.reference)
    if not references:
        raise ValueError(f"no reference MIDI under {settings.reference}")
    check_shared_names(references, estimates, settings.estimate_naming)
    result = score(references, estimates, naming=settings.estimate_naming, sustain=settings.sustain_estimates)
    for name, system in result["systems"].items():
        print(f"{name}: {len(system['pieces'])} pieces scored, {len(system['missing'])} without an estimate, "
              f"{len(system['failed'])} failed")
        for failure in system["failed"]:
            print(f"  FAILED {printable(failure['estimate'])}: {printable(failure['reason'])}")
        print(format_metrics(system["mean"]))
    for path in write_report(result, references, settings.out):
        print(path)
    return 1 if any(system["failed"] for system in result["systems"].values()) else 0
