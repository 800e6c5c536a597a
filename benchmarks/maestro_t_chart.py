"""The MAESTRO-T report's chart (benchmarks/maestro_t.py): the 2 x 2 NLL table as bars with their
95% intervals, the statistics of the pianists, the transcriptions and both composers' samples
(relative to the pianists'), and the shift each kind of transcription error makes in the train
split's statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transcribe.errors import KINDS

STATISTICS = ("notes_per_second", "median_note_s", "p95_note_s", "share_over_5_s", "mean_polyphony", "pitch_mean",
              "pitch_std", "velocity_mean", "share_of_commonest_pitch")
SOURCES = (("transcribed_test", "transcribed test", "C0"),
           ("composer_trained_on_ground_truth", "composer on ground truth", "C2"),
           ("composer_trained_on_transcribed", "composer on transcriptions", "C3"))


def plot(path: Path, figures: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), gridspec_kw={"width_ratios": [1, 1.6, 1.6]})
    _nll(axes[0], figures["nll"])
    _samples(axes[1], figures["samples"])
    _attribution(fig, axes[2], figures["train_statistics"])
    fig.suptitle(f"MAESTRO-T: composers trained on ground truth and on transcriptions "
                 f"({figures['runs']['steps']} steps, seed {figures['runs']['seed']}, {figures['runs']['config']})",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _nll(axis, nll: dict) -> None:
    columns = ("scored_on_ground_truth", "scored_on_transcribed")
    for row, (trained_on, label, color) in enumerate((("trained_on_ground_truth", "trained on ground truth", "C2"),
                                                      ("trained_on_transcribed", "trained on transcriptions", "C3"))):
        values = [nll[trained_on][c]["nll_per_event"] for c in columns]
        low = [v - nll[trained_on][c]["interval_95"][0] for v, c in zip(values, columns)]
        high = [nll[trained_on][c]["interval_95"][1] - v for v, c in zip(values, columns)]
        axis.bar(np.arange(2) + (row - 0.5) * 0.38, values, 0.38, yerr=[low, high], capsize=4, color=color,
                 label=label)
    base = nll["trained_on_ground_truth"]["scored_on_ground_truth"]["nll_per_event"]
    axis.hlines(base + nll["target_gap"], -0.45, 0.45, colors="k", linestyles="dashed",
                label=f"target: +{nll['target_gap']} nats")
    axis.set_xticks([0, 1], [f"ground-truth {nll['split']}", f"transcribed {nll['split']}"])
    axis.set_ylabel("NLL per event (nats), 95% interval")
    axis.set_title(f"gap on ground truth: {nll['gap_on_ground_truth']:+.3f} nats", fontsize=10)
    axis.legend(fontsize=8)
    bottom = min(nll[r][c]["interval_95"][0] for r in ("trained_on_ground_truth", "trained_on_transcribed")
                 for c in columns)
    axis.set_ylim(bottom=max(0.0, bottom - 0.2))


def _samples(axis, samples: dict) -> None:
    pianists = samples["pianists_test"]
    present = [s for s in SOURCES if samples.get(s[0])]  # None: no notes
    width = 0.8 / len(present)
    for index, (key, label, color) in enumerate(present):
        ratios = [samples[key][name] / pianists[name] if pianists[name] else np.nan for name in STATISTICS]
        axis.bar(np.arange(len(STATISTICS)) + (index - (len(present) - 1) / 2) * width, ratios, width, color=color,
                 label=label)
    axis.axhline(1.0, color="grey", lw=1)
    axis.set_xticks(range(len(STATISTICS)), [n.replace("_", " ") for n in STATISTICS], rotation=35, ha="right",
                    fontsize=8)
    axis.set_ylabel("relative to the pianists' test MIDI")
    axis.set_title(f"statistics of {samples['seconds']:.0f} s pieces", fontsize=10)
    axis.legend(fontsize=8)


def _attribution(fig, axis, train: dict) -> None:
    rows = [*KINDS, "all (transcribed)"]
    cells = np.array([[_relative(train[name], kind) for name in STATISTICS] for kind in rows])
    limit = max(float(np.nanmax(np.abs(cells))), 1e-3)
    image = axis.imshow(100 * cells, cmap="RdBu_r", vmin=-100 * limit, vmax=100 * limit, aspect="auto")
    for (i, j), value in np.ndenumerate(cells):
        axis.text(j, i, f"{100 * value:+.1f}" if np.isfinite(value) else "n/a", ha="center", va="center", fontsize=7)
    axis.set_xticks(range(len(STATISTICS)), [n.replace("_", " ") for n in STATISTICS], rotation=35, ha="right",
                    fontsize=8)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    axis.set_title("train split: % shift of each statistic, one kind of error put in", fontsize=10)
    fig.colorbar(image, ax=axis, label="% of the ground truth's value")


def _relative(statistic: dict, kind: str) -> float:
    shift = statistic["shift"] if kind.startswith("all") else statistic["by_kind"][kind]
    return shift / abs(statistic["ground_truth"]) if statistic["ground_truth"] else np.nan
