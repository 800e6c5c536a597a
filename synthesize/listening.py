"""A listening page: people judge a synthesizer by ear first.

For each excerpt, every renderer's audio side by side as `<audio>` players (the reference first), with
a spectrogram of the excerpt per renderer and the figures the benchmark measured. The page is a folder
(index.html, audio/, spectrograms/) written whole into a temporary sibling and renamed into place, so a
reader never finds half a page; open index.html in any browser.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from stages.io.audio import write_wav


def slug(name: str) -> str:
    """A file-name-safe form of a renderer's name."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "renderer"


def spectrogram_png(renders: dict[str, np.ndarray], path: Path, title: str, sample_rate_hz: int = 16_000) -> None:
    """Log-mel spectrograms of the same excerpt by each renderer, stacked (12 nats of range each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from synthesize.realism import log_mel

    figure, axes = plt.subplots(len(renders), 1, figsize=(10, 1.9 * len(renders)), sharex=True, squeeze=False)
    for axis, (name, audio) in zip(axes[:, 0], renders.items()):
        mel = log_mel(audio, sample_rate_hz).T
        axis.imshow(mel, origin="lower", aspect="auto", vmin=mel.max() - 12, vmax=mel.max(),
                    extent=(0, len(audio) / sample_rate_hz, 0, mel.shape[0]), cmap="magma")
        axis.set_ylabel("mel band")
        axis.set_title(name, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)  # a quarter of the bytes


def _figures_table(figures: dict[str, dict[str, float]]) -> str:
    keys = sorted({key for row in figures.values() for key in row})
    head = "".join(f"<th>{html.escape(key)}</th>" for key in keys)
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{row[key]:.3f}</td>" if key in row else "<td></td>" for key in keys) + "</tr>"
        for name, row in figures.items())
    return f"<table><tr><th>renderer</th>{head}</tr>{rows}</table>"


def write_listening_page(folder: Path, excerpts: list[str], renders: dict[str, list[np.ndarray]],
                         sample_rate_hz: int = 16_000, figures: dict[str, dict[str, float]] | None = None,
                         title: str = "wave2midi2wave: listen side by side") -> Path:
    """Write the page for `renders` (renderer name -> one audio array per excerpt, the reference first)
    into `folder`, replacing an older page there; returns the path of index.html."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))
    try:
        names = {name: slug(name) for name in renders}
        sections = []
        for i, excerpt in enumerate(excerpts):
            spectrogram = Path("spectrograms") / f"{i:02d}.png"
            (scratch / spectrogram).parent.mkdir(exist_ok=True)
            spectrogram_png({name: audio[i] for name, audio in renders.items()}, scratch / spectrogram,
                            excerpt, sample_rate_hz)
            players = []
            for name, audio in renders.items():
                wav = Path("audio") / names[name] / f"{i:02d}.wav"
                (scratch / wav).parent.mkdir(parents=True, exist_ok=True)
                write_wav(scratch / wav, audio[i], sample_rate_hz)
                players.append(f'<figure><figcaption>{html.escape(name)}</figcaption>'
                               f'<audio controls preload="none" src="{wav.as_posix()}"></audio></figure>')
            sections.append(f"<section><h2>{html.escape(excerpt)}</h2><div class=players>{''.join(players)}</div>"
                            f'<img src="{spectrogram.as_posix()}" alt="log-mel spectrograms of {html.escape(excerpt)}">'
                            "</section>")
        table = _figures_table(figures) if figures else ""
        page = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title><style>"
                "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
                "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
                ".players{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:small}"
                f"img{{max-width:100%}}</style></head><body><h1>{html.escape(title)}</h1>{table}"
                f"{''.join(sections)}</body></html>")
        (scratch / "index.html").write_text(page, encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        scratch.rename(folder)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)
    return folder / "index.html"
