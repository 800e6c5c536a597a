"""Pictures people would rather look at than read: piano rolls of reference against estimate,
and training curves."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from stages.io.midi import NOTE_DTYPE


def plot_piano_rolls(path: Path | str, reference: np.ndarray | None, estimate: np.ndarray,
                     title: str = "", seconds: float | None = None,
                     caption: str = "grey: reference, outlines: transcription, colour: velocity") -> Path:
    """A PNG piano roll: reference notes as grey bars, estimated notes as coloured outlines
    (shade = velocity), so misses and extra notes stand out. The caption names the two, when
    there are reference notes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    reference = np.zeros(0, NOTE_DTYPE) if reference is None else reference
    both = np.concatenate([reference, estimate]) if len(reference) else estimate
    end = seconds or (float(both["offset_s"].max()) if len(both) else 1.0)
    low = int(both["pitch"].min()) - 2 if len(both) else 21
    high = int(both["pitch"].max()) + 2 if len(both) else 108
    figure, axes = plt.subplots(figsize=(min(24, 4 + end / 2), 5), dpi=100)
    if len(reference):
        axes.add_collection(PatchCollection(
            [Rectangle((n["onset_s"], n["pitch"] - 0.4), n["offset_s"] - n["onset_s"], 0.8) for n in reference],
            facecolor="0.75", edgecolor="none", label="reference"))
    colours = plt.cm.viridis(estimate["velocity"] / 127.0) if len(estimate) else []
    axes.add_collection(PatchCollection(
        [Rectangle((n["onset_s"], n["pitch"] - 0.4), n["offset_s"] - n["onset_s"], 0.8) for n in estimate],
        facecolor="none", edgecolor=colours, linewidth=1.2))
    axes.set_xlim(0, end)
    axes.set_ylim(low, high)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("MIDI pitch")
    axes.set_title(title + (f"  ({caption})" if len(reference) else ""))
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_history(history_csv: Path | str, path: Path | str) -> Path:
    """A PNG of a training run's history.csv: one panel per figure (loss beside val_loss, each
    validation metric on its own), against the epoch, so a plateau or a divergence shows at once."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv) as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    names = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    # "x" and "val_x" share a panel; other validation figures get their own.
    panels = [name for name in names if not (name.startswith("val_") and name[4:] in names)]
    figure, axes = plt.subplots(1, max(1, len(panels)), figsize=(3.6 * max(1, len(panels)), 3), squeeze=False)
    for axis, name in zip(axes[0], panels):
        for series in (name, "val_" + name):
            values = [float(row[series]) if row.get(series) else np.nan for row in rows]
            if not all(np.isnan(values)):
                axis.plot(epochs, values, marker="o", markersize=3, label=series)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=7)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
