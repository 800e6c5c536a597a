"""Pictures people would rather look at than read: piano rolls of reference against estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.midi import NOTE_DTYPE


def plot_piano_rolls(path: Path | str, reference: np.ndarray | None, estimate: np.ndarray,
                     title: str = "", seconds: float | None = None) -> Path:
    """A PNG piano roll: reference notes as grey bars, estimated notes as coloured outlines
    (shade = velocity), so misses and extra notes stand out."""
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
    axes.set_title(title + ("  (grey: reference, outlines: transcription, colour: velocity)" if len(reference) else ""))
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
