"""How close the WaveNet comes to a recorded piano, on held-out MIDI: excerpts of ASAP test
performances (one every len/count performances, `--seconds` from each one's first note), rendered
by the Salamander grand (the reference: a recorded Yamaha C5, pedal applied, dry), by FluidSynth
with FluidR3_GM and TimGM6mb (baselines), and by each WaveNet named. For each renderer:

- `log_mel_distance`: multi-resolution log-mel distance to the reference render of the same MIDI
  (synthesize/evaluate.py; 0 for the reference itself);
- `classifier_accuracy`: the two-sample classifier test against the reference
  (synthesize/realism.py; 0.5 = indistinguishable);
- round-trip note F1: the render transcribed by the project's transcriber (`note/f1`) and by
  basic-pitch 0.4 (`basic_pitch/note/f1`, its ONNX model in a separate virtualenv this script
  makes), scored against the MIDI with mir_eval (MAESTRO-paper settings);
- `note/restrikes_of_held_keys` (and basic-pitch's): wrong notes of a key the MIDI still holds or
  has just released (transcribe.metrics.release_ghosts), per MIDI note: a held note that swells or
  flutters is heard as its key struck again. Compare with the reference's own count.

Every render is first scaled to the reference's RMS, so the figures judge timbre, not output gain.
Writes benchmarks/results/synthesize_quality.json, a spectrogram PNG of one excerpt per renderer
and up to 4 WAVs of it (16 kHz) under benchmarks/results/, and a listening page (--page, default
runs/synthesize-listening/index.html): every excerpt by every renderer as players side by side.

    python -m benchmarks.synthesize_quality [--wavenet NAME=CHECKPOINT ...] [--count 12] [--seconds 10]
                                           [--split test] [--no-basic-pitch]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import record
from benchmarks.paths import REPO, SHARED_DATA

RATE = 16_000
BASIC_PITCH_VENV = REPO / "runs" / "basic-pitch-venv"
# basic-pitch 0.4 without its TensorFlow pin (--no-deps), the ONNX runtime, and what its inference imports.
BASIC_PITCH_PACKAGES = (["basic-pitch==0.4.*", "--no-deps"],
                        ["onnxruntime", "librosa", "pretty_midi", "mir_eval", "resampy<0.4.3", "scipy",
                         "typing-extensions", "soundfile"])


def excerpts(asap: Path, split: str, count: int, seconds: float) -> tuple[list, list[str]]:
    """`count` sustain-extended excerpts spread over the split's performances, and their names."""
    from compose.data import window
    from stages.io.midi import apply_sustain, read_note_sequence

    with (asap / "asap_split.csv").open(newline="", encoding="utf-8") as handle:
        paths = [row["midi_performance"] for row in csv.DictReader(handle) if row["split"] == split]
    chosen = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, count)]
    sequences = []
    for path in chosen:
        sequence = apply_sustain(read_note_sequence(asap / path))
        first = min(note.start_time for note in sequence.notes)
        sequences.append(window(sequence, first, first + seconds))
    return sequences, chosen


def fit(audio: np.ndarray, samples: int) -> np.ndarray:
    audio = np.asarray(audio, np.float32)[:samples]
    return np.pad(audio, (0, samples - len(audio)))


def basic_pitch_venv() -> Path:
    python = BASIC_PITCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BASIC_PITCH_VENV)], check=True)
        for packages in BASIC_PITCH_PACKAGES:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def basic_pitch_notes(wavs: list[Path]) -> dict[str, np.ndarray]:
    from stages.io.midi import NOTE_DTYPE

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "notes.json"
        subprocess.run([str(basic_pitch_venv()), str(REPO / "benchmarks" / "synthesize_basic_pitch.py"), str(out),
                        *map(str, wavs)], check=True, capture_output=True)
        found = json.loads(out.read_text())
    return {path: np.array([tuple(n) for n in notes], dtype=NOTE_DTYPE) for path, notes in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asap", type=Path, default=SHARED_DATA / "asap")
    parser.add_argument("--wavenet", nargs="+", default=None, metavar="NAME=CHECKPOINT",
                        help="WaveNets to measure (default: wavenet=the shipped checkpoint)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--split", default="test", help="test for the record; validation to choose")
    parser.add_argument("--example", type=int, default=1, help="the excerpt drawn and saved as WAV")
    parser.add_argument("--no-basic-pitch", action="store_true")
    parser.add_argument("--name", help="results file stem (default: synthesize_quality[_SPLIT])")
    parser.add_argument("--page", type=Path, default=REPO / "runs" / "synthesize-listening",
                        help="folder of the listening page: every excerpt by every renderer, side by side "
                             "(default: runs/synthesize-listening; open its index.html)")
    args = parser.parse_args()

    from maestro import salamander
    from stages.contract import content_id
    from stages.io.audio import write_wav
    from stages.io.midi import notes_from_sequence
    from synthesize.evaluate import fluidsynth_render, log_mel_distance
    from synthesize.listening import spectrogram_png, write_listening_page
    from synthesize.realism import matched_level, two_sample_accuracy
    from synthesize.synthesizer import DEFAULT_CHECKPOINT, Synthesizer
    from transcribe.metrics import mean_metrics, release_ghost_share, transcription_metrics
    from transcribe.transcriber import Transcriber

    wavenets = (dict(item.split("=", 1) for item in args.wavenet) if args.wavenet
                else {"wavenet": str(DEFAULT_CHECKPOINT)})
    sequences, names = excerpts(args.asap, args.split, args.count, args.seconds)
    samples = int(args.seconds * RATE)
    renderers = {"salamander (reference)": lambda s: salamander.render_sequence(s, RATE, end_seconds=args.seconds),
                 "fluidsynth_fluidr3_gm": lambda s: fluidsynth_render(s, "FluidR3_GM"),
                 "fluidsynth_timgm6mb": lambda s: fluidsynth_render(s, "TimGM6mb")}
    settings = {}
    for name, checkpoint in wavenets.items():
        synthesizer = Synthesizer.load(checkpoint)
        renderers[name] = synthesizer.render
        settings[name] = {"checkpoint": str(checkpoint), "sha256_16": content_id(Path(checkpoint)),
                          "config": synthesizer.config.name, "architecture": synthesizer.config.architecture,
                          "temperature": synthesizer.generator.temperature,
                          "output_rms_lsb": synthesizer.output_rms_lsb}
    reference_name = "salamander (reference)"
    audio: dict[str, list[np.ndarray]] = {name: [] for name in renderers}
    for sequence in sequences:
        reference = fit(renderers[reference_name](sequence), samples)
        audio[reference_name].append(reference)
        for name, render in renderers.items():
            if name != reference_name:
                audio[name].append(matched_level(fit(render(sequence), samples), reference))

    transcriber = Transcriber.load()
    references = [notes_from_sequence(sequence) for sequence in sequences]
    figures = {}
    scratch = Path(tempfile.mkdtemp(prefix="synthesize_quality_"))
    wavs: dict[str, list[Path]] = {}
    for name, renders in audio.items():
        found_here = [transcriber.transcribe(a) for a in renders]
        scores = [transcription_metrics(ref, notes, transcriber.config.frames_per_second)
                  for ref, notes in zip(references, found_here)]
        summary = {key: value for key, value in mean_metrics(scores).items() if key.startswith(("note/", "frame/f1"))}
        # a held note that swells or flutters reads to a transcriber as its key struck again
        summary["note/restrikes_of_held_keys"] = float(np.mean([release_ghost_share(ref, notes)
                                                               for ref, notes in zip(references, found_here)]))
        summary["log_mel_distance"] = float(np.mean([log_mel_distance(a, r)
                                                     for a, r in zip(renders, audio[reference_name])]))
        if name != reference_name:
            summary["classifier_accuracy"] = two_sample_accuracy(renders, audio[reference_name], RATE)
        figures[name] = summary
        wavs[name] = []
        for i, a in enumerate(renders):
            path = scratch / f"{len(wavs)}-{i}.wav"
            write_wav(path, a, RATE)
            wavs[name].append(path)
    if not args.no_basic_pitch:
        found = basic_pitch_notes([path for paths in wavs.values() for path in paths])
        for name, paths in wavs.items():
            scores = [transcription_metrics(ref, found[str(path)]) for ref, path in zip(references, paths)]
            figures[name].update({f"basic_pitch/{key}": value for key, value in mean_metrics(scores).items()
                                  if key.startswith("note/")})
            figures[name]["basic_pitch/note/restrikes_of_held_keys"] = float(np.mean(
                [release_ghost_share(ref, found[str(path)]) for ref, path in zip(references, paths)]))
    figures = {name: {key: round(value, 4) for key, value in summary.items()} for name, summary in figures.items()}

    results = record.RESULTS
    example = {name: renders[args.example] for name, renders in audio.items()}
    stem = args.name or ("synthesize_quality" if args.split == "test" else f"synthesize_quality_{args.split}")
    spectrogram_png(example, results / f"{stem}_spectrograms.png",
                    f"{names[args.example]}: first {args.seconds:g} s (log-mel, 12 nat range)")
    if args.split == "test":
        for name in [reference_name, "fluidsynth_fluidr3_gm", *wavenets][:4]:
            write_wav(results / f"synthesize_example_{name.split(' ')[0]}.wav", example[name], RATE)
    figures = {"renderers": figures, "wavenets": settings, "excerpts": names, "seconds": args.seconds,
               "split": args.split}
    page = write_listening_page(args.page, names, audio, RATE, figures["renderers"],
                                f"synthesize_quality: {args.split} excerpts, {args.seconds:g} s each")
    print(f"listen: {page}")
    record.save(stem, figures, notes="Reference: the Salamander grand (maestro/salamander.py) on the same MIDI. "
                "Every render scaled to the reference's RMS. Classifier: logistic regression on 0.5 s log-mel "
                "mean/std, trained on half the excerpts, accuracy on the other half. Round trips scored with "
                "the sustain-extended MIDI as reference.")


if __name__ == "__main__":
    main()
