"""Quality without listening tests, on held-out MIDI excerpts:
(1) round-trip note F1: transcribe the rendered audio with the project's transcriber and score it
    against the input MIDI with mir_eval;
(2) multi-resolution log-mel distance to the FluidSynth rendering of the same MIDI.
The same two figures for FluidSynth with the other soundfont give a reference point.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from maestro.augmentation import Augmentation, render_midi
from stages.io.midi import NoteSequence, apply_sustain, notes_from_sequence, write_midi
from transcribe.metrics import mean_metrics, transcription_metrics
from transcribe.transcriber import Transcriber

RESOLUTIONS = (512, 1024, 2048)  # FFT sizes; hop a quarter of each, 80 mel bands


@functools.lru_cache(maxsize=8)
def _mel(sample_rate_hz: int, fft_size: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate_hz, n_fft=fft_size, n_mels=80).astype(np.float32)


def log_mel_distance(a: np.ndarray, b: np.ndarray, sample_rate_hz: int = 16_000) -> float:
    """Mean absolute difference of log-mel spectrograms at three resolutions (lower is closer)."""
    import librosa

    length = min(len(a), len(b))
    distances = []
    for size in RESOLUTIONS:
        specs = [np.log(_mel(sample_rate_hz, size)
                        @ np.abs(librosa.stft(x[:length], n_fft=size, hop_length=size // 4)) ** 2 + 1e-5)
                 for x in (a, b)]
        distances.append(float(np.mean(np.abs(specs[0] - specs[1]))))
    return float(np.mean(distances))


def fluidsynth_render(sequence: NoteSequence, soundfont: str, sample_rate_hz: int = 16_000) -> np.ndarray:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "excerpt.mid"
        write_midi(sequence, path)
        end = apply_sustain(sequence).total_time + 1.0
        return render_midi(path, Augmentation(soundfont), sample_rate_hz, np.random.default_rng(0), end)


def round_trip(excerpts: list[NoteSequence], render: Callable[[NoteSequence], np.ndarray], transcriber: Transcriber,
               reference_soundfont: str = "FluidR3_GM", renders: list[np.ndarray] | None = None) -> dict:
    """Mean round-trip metrics and log-mel distance of a renderer over the excerpts (each render also
    appended to `renders` when given)."""
    scores, distances = [], []
    for sequence in excerpts:
        audio = render(sequence)
        if renders is not None:
            renders.append(audio)
        reference = notes_from_sequence(apply_sustain(sequence))
        scores.append(transcription_metrics(reference, transcriber.transcribe(audio),
                                            transcriber.config.frames_per_second))
        distances.append(log_mel_distance(audio, fluidsynth_render(sequence, reference_soundfont)))
    return {**mean_metrics(scores), "log_mel_distance": float(np.mean(distances)), "excerpts": len(excerpts)}


def evaluate(midi_dir: Path | str, split: str | None = "test", split_csv: Path | str | None = None,
             seconds: float = 10.0, count: int = 20, checkpoint: Path | None = None,
             transcriber_checkpoint: Path | None = None, temperature: float | None = None,
             output_rms_lsb: float | None = None, page: Path | None = None) -> dict:
    """Round-trip figures of the WaveNet and of FluidSynth with TimGM6mb on the first `seconds`
    of the first `count` pieces of a MIDI folder (one split of it with a split CSV); with `page`, a
    listening page of the excerpts by FluidR3_GM (the reference), the WaveNet and TimGM6mb."""
    from compose.data import load_pieces, window
    from stages.checkpoints import checkpoint_for
    from synthesize.stage import Synthesizer

    pieces = load_pieces(midi_dir, split, split_csv)
    excerpts = [window(piece, 0.0, seconds) for piece in pieces[:count]]
    transcriber = Transcriber.load(checkpoint_for("transcribe", transcriber_checkpoint))
    synthesizer = Synthesizer.load(checkpoint_for("synthesize", checkpoint), temperature=temperature,
                                   output_rms_lsb=output_rms_lsb)
    renders: dict[str, list[np.ndarray]] = {"wavenet": [], "fluidsynth_timgm6mb": []}
    result = {"wavenet": round_trip(excerpts, synthesizer.render, transcriber, renders=renders["wavenet"]),
              "fluidsynth_timgm6mb": round_trip(excerpts, lambda s: fluidsynth_render(s, "TimGM6mb"), transcriber,
                                                renders=renders["fluidsynth_timgm6mb"])}
    rounded = {name: {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
               for name, figures in result.items()}
    if page is not None:
        from synthesize.listening import write_listening_page

        reference = [fluidsynth_render(sequence, "FluidR3_GM") for sequence in excerpts]
        length = {i: min(len(r[i]) for r in (reference, *renders.values())) for i in range(len(excerpts))}
        players = {name: [audio[i][: length[i]] for i in range(len(excerpts))]
                   for name, audio in {"fluidsynth_fluidr3_gm (reference)": reference, **renders}.items()}
        names = [f"excerpt {i + 1}: {piece.filename or piece.id or ''}".strip() for i, piece in enumerate(excerpts)]
        figures = {name: {k: v for k, v in row.items() if k in ("note/f1", "frame/f1", "log_mel_distance")}
                   for name, row in rounded.items()}
        rounded["page"] = str(write_listening_page(page, names, players, figures=figures))
    return {**rounded, "wavenet_sampling_temperature": synthesizer.generator.temperature,
            "wavenet_output_rms_lsb": synthesizer.output_rms_lsb}


def evaluate_from(settings, rendering) -> int:
    """`w2m2w evaluate synthesize`: prints the figures as JSON."""
    import json

    s = settings
    result = evaluate(s.midi_dir, s.split if s.split_csv else None, s.split_csv, s.seconds, s.count, s.checkpoint,
                      s.transcriber, rendering.temperature, rendering.output_rms_lsb, s.page)
    print(json.dumps(result, indent=2))
    return 0
