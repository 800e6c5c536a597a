"""How the transcriber holds up on pianos, rooms and codecs: the same test excerpts played by each
training timbre, by a piano no model here trained or was tuned on, in two rooms and through a
low-bit-rate MP3 (issues 46 and 57), beside other transcribers a user could pick instead.

    python -m benchmarks.transcribe_robustness [--checkpoint C] [--label L] [--pieces 16]
        [--conditions unseen,unseen-room-1.4,unseen-mp3-64,...]
        [--basic-pitch runs/basic-pitch-venv/bin/basic-pitch] [--transkun runs/transkun-venv]

`bash benchmarks/setup_peers.sh` installs the two peers, basic-pitch 0.4 and transkun 2.0.1, each in
a virtualenv of its own under runs/.

The first 30 s of an even spread of ASAP test-split performances are rendered once per condition
at 44.1 kHz into --work (kept, so other checkpoints and tools score the very same audio) and
transcribed from the WAV files as a user would; references are the sustain-extended notes
(MAESTRO protocol). Conditions:

- FluidR3_GM, TimGM6mb, salamander: the three training timbres, dry;
- unseen: MuseScore General's grand (Debian musescore-general-soundfont-lossless, installed by
  `bash setup.sh --benchmarks`), never used to train or tune;
- <timbre>-room-0.8: a moderately live room (RT60 0.8 s, direct +6 dB over the reverb, room tone
  at 40 dB SNR); <timbre>-room-1.4: a concert-hall-like room (RT60 1.4 s, direct 0 dB, 35 dB SNR);
- <timbre>[-room-...]-mp3-<kb/s> or -opus-<kb/s>: the same, then encoded and decoded by that codec
  (maestro.codecs.lossy_codec), as a recording reaches a user off a phone or a streaming site.

Every row has note, note-with-offset and frame F1, note precision and recall, and the share of
release ghosts (transcribe.metrics.release_ghosts: wrong notes of a key still sounding or just
released, per reference note). The peers' MIDI is kept under WORK/peers/TOOL/CONDITION with the
seconds its command took, so reruns score it again without running it; their speed is audio
seconds per second of their whole command (start-up and model loading included), ours is
in-process (model loaded once, reading and resampling included).

Writes benchmarks/results/transcribe_robustness[_LABEL].json.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks import record
from benchmarks.paths import SHARED_DATA
from maestro.augmentation import Augmentation, file_rng, render_midi
from maestro.soundfonts import check_timbre
from stages.contract import content_id, write_bytes_atomic
from stages.io.audio import encode_wav
from stages.io.midi import apply_sustain, crop, notes_from_sequence, read_note_sequence, sequence_from_notes, write_midi
from transcribe.evaluate import reference_notes
from transcribe.metrics import mean_metrics, release_ghost_share, transcription_metrics
from transcribe.pedal.pedal import PedalTranscriber, add_pedal, key_releases, pedal_checkpoint, pedal_intervals
from transcribe.pedal.training import pedal_metrics
from transcribe.transcriber import DEFAULT_CHECKPOINT, Transcriber

UNSEEN = "MuseScore_General_Full"
ROOMS = {"room-0.8": dict(room=(0.8, 6.0), noise_snr_db=40.0, noise_color="room"),
         "room-1.4": dict(room=(1.4, 0.0), noise_snr_db=35.0, noise_color="room")}
CODEC = re.compile(r"-(mp3|opus)-(\d+(?:\.\d+)?)$")  # a condition's last part: codec and kb/s
TIMBRES = {"FluidR3_GM": "FluidR3_GM", "TimGM6mb": "TimGM6mb", "salamander": "salamander", "unseen": UNSEEN}
DEFAULT_CONDITIONS = ("FluidR3_GM", "TimGM6mb", "salamander", "unseen", "unseen-room-0.8", "unseen-room-1.4",
                      "unseen-mp3-64", "salamander-room-0.8", "salamander-room-1.4")
SAMPLE_RATE_HZ = 44_100
SEED = 46
KEPT = ("note/f1", "note/precision", "note/recall", "note-with-offset/f1", "frame/f1", "release-ghosts/share")
PEDAL_KEPT = ("pedal/f1", "pedal-with-release/f1", "cc64/note/f1", "cc64/note-with-offset/f1",
              "keys/note-with-offset/f1", "keys-baked/note-with-offset/f1", "pedal-frame/f1")


def augmentation(condition: str) -> Augmentation:
    """The rendering of one condition name: a timbre, optionally followed by a room, then a codec."""
    codec = CODEC.search(condition)
    if codec is not None:
        recorded = augmentation(condition[: codec.start()])
        return dataclasses.replace(recorded, codec=(codec[1], float(codec[2])))
    for room, settings in ROOMS.items():
        if condition.endswith("-" + room) and condition[: -len(room) - 1] in TIMBRES:
            return Augmentation(soundfont=TIMBRES[condition[: -len(room) - 1]], **settings)
    if condition not in TIMBRES:
        raise SystemExit(f"unknown condition {condition!r}: use a timbre ({', '.join(TIMBRES)}), "
                         f"optionally followed by -{' or -'.join(ROOMS)}, then by -mp3-KBPS or -opus-KBPS")
    return Augmentation(soundfont=TIMBRES[condition])


def test_excerpts(split_csv: Path, midi_dir: Path, pieces: int) -> list[tuple[str, Path]]:
    """An even spread of the test split's performances: (short unique name, MIDI path)."""
    with open(split_csv, newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["split"] == "test"]
    picked = [rows[round(i * len(rows) / pieces)] for i in range(min(pieces, len(rows)))]
    return [(f"{i:02d}-" + re.sub(r"[^A-Za-z0-9]+", "_", f"{row['composer']} {row['title']}").strip("_"),
             midi_dir / row["midi_performance"]) for i, row in enumerate(picked)]


def prepare(work: Path, conditions: list[str], excerpts: list[tuple[str, Path]], seconds: float) -> None:
    """Write the cut references (work/reference) and each condition's audio, once."""
    (work / "reference").mkdir(parents=True, exist_ok=True)
    for name, midi in excerpts:
        path = work / "reference" / f"{name}.mid"
        if not path.exists():
            write_midi(crop(read_note_sequence(midi), 0.0, seconds), path)
    for condition in conditions:
        folder = work / condition
        folder.mkdir(exist_ok=True)
        for name, _ in tqdm(excerpts, desc=f"render {condition}", unit="excerpt"):
            wav = folder / f"{name}.wav"
            if wav.exists():
                continue
            audio = render_midi(work / "reference" / f"{name}.mid", augmentation(condition), SAMPLE_RATE_HZ,
                                file_rng(SEED, f"{condition}/{name}"), end_seconds=seconds)
            write_bytes_atomic(wav, encode_wav(audio, SAMPLE_RATE_HZ))


def run_basic_pitch(binary: Path, wavs: list[Path], cache: Path) -> None:
    """basic-pitch's command line (default settings) on all the WAVs at once, its MIDI into `cache`."""
    with tempfile.TemporaryDirectory(prefix="w2m2w-basic-pitch-") as out:
        subprocess.run([str(binary), out, *map(str, wavs)], check=True, capture_output=True)
        for wav in wavs:
            shutil.move(Path(out) / f"{wav.stem}_basic_pitch.mid", cache / f"{wav.stem}.mid")


def run_transkun(binary: Path, wavs: list[Path], cache: Path) -> None:
    """transkun's command line (it takes one file) on one WAV, on the CPU, its MIDI into `cache`."""
    (wav,) = wavs
    with tempfile.TemporaryDirectory(prefix="w2m2w-transkun-") as out:
        subprocess.run([str(binary), str(wav), f"{out}/out.mid", "--device", "cpu"], check=True,
                       capture_output=True)
        shutil.move(f"{out}/out.mid", cache / f"{wav.stem}.mid")


# tool: (how to run it, its executable's name, whether one command takes many files)
PEERS = {"basic_pitch": (run_basic_pitch, "basic-pitch", True), "transkun": (run_transkun, "transkun", False)}


def peer_binary(tool: str, path: Path) -> Path:
    """The peer's executable, given it or the virtualenv that holds it."""
    binary = path / "bin" / PEERS[tool][1] if path.is_dir() else path
    if not binary.is_file():
        raise SystemExit(f"{binary}: no {PEERS[tool][1]} there (bash benchmarks/setup_peers.sh installs it)")
    return binary


def peer_notes(tool: str, binary: Path, wavs: list[Path], cache: Path) -> tuple[dict[str, np.ndarray], float]:
    """A peer's notes for each WAV, its own sustain pedal applied (as the reference's is), and the
    seconds its commands took. Runs it only on WAVs whose MIDI is not in `cache` yet; each MIDI
    keeps its share of its command's time beside it (NAME.seconds), written once the MIDI is there,
    so a killed run resumes and another process may fill the same cache."""
    run, _, batched = PEERS[tool]
    cache.mkdir(parents=True, exist_ok=True)
    missing = [wav for wav in wavs if not (cache / f"{wav.stem}.seconds").exists()]
    for batch in [missing] if batched and missing else [[wav] for wav in missing]:
        if all((cache / f"{wav.stem}.seconds").exists() for wav in batch):
            continue
        start = time.perf_counter()
        run(binary, batch, cache)
        share = (time.perf_counter() - start) / len(batch)
        for wav in batch:
            write_bytes_atomic(cache / f"{wav.stem}.seconds", f"{share:.3f}\n".encode())
    notes = {wav.stem: notes_from_sequence(apply_sustain(read_note_sequence(cache / f"{wav.stem}.mid")))
             for wav in wavs}
    return notes, sum(float((cache / f"{wav.stem}.seconds").read_text()) for wav in wavs)


def score_pedal(notes: np.ndarray, intervals: np.ndarray, reference_sequence, reference: np.ndarray,
                seconds: float, fps: float) -> dict[str, float]:
    """`--pedal cc64` against the truth: its pedal presses; its notes with its own pedal applied
    again (against the sustain-extended reference, as for baked output); its key releases
    (against the notes as the keys were held, beside the baked notes against the same)."""
    keys = key_releases(notes, intervals)
    sequence = add_pedal(sequence_from_notes(keys), intervals)
    sequence.total_time = max(sequence.total_time, seconds)
    resounded = notes_from_sequence(apply_sustain(sequence))
    cc64 = transcription_metrics(reference, resounded, fps)
    held = notes_from_sequence(reference_sequence)
    return {**pedal_metrics(pedal_intervals(reference_sequence), intervals),
            "cc64/note/f1": cc64["note/f1"], "cc64/note-with-offset/f1": cc64["note-with-offset/f1"],
            "keys/note-with-offset/f1": transcription_metrics(held, keys, fps)["note-with-offset/f1"],
            "keys-baked/note-with-offset/f1": transcription_metrics(held, notes, fps)["note-with-offset/f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--label", help="suffix of the record's name (a checkpoint other than the shipped one)")
    parser.add_argument("--conditions", default=",".join(DEFAULT_CONDITIONS))
    parser.add_argument("--pieces", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--work", type=Path, default=Path("data/robustness"),
                        help="where the excerpts' audio is rendered once and kept")
    parser.add_argument("--no-rescorer", action="store_true")
    parser.add_argument("--no-pedal", action="store_true",
                        help="skip the pedal figures even where CHECKPOINT.pedal.keras lies beside the checkpoint")
    parser.add_argument("--basic-pitch", type=Path, help="also score this basic-pitch executable (or its venv)")
    parser.add_argument("--transkun", type=Path, help="also score this transkun executable (or its venv)")
    parser.add_argument("--midi-dir", type=Path, default=SHARED_DATA / "asap")
    args = parser.parse_args()
    conditions = args.conditions.split(",")
    for condition in conditions:
        try:
            check_timbre(augmentation(condition).soundfont)
        except (FileNotFoundError, RuntimeError) as error:
            hint = " (bash setup.sh --benchmarks installs it)" if "unseen" in condition else ""
            raise SystemExit(f"{condition}: {error}{hint}")
    peers = {tool: peer_binary(tool, path) for tool, path in
             (("basic_pitch", args.basic_pitch), ("transkun", args.transkun)) if path is not None}
    excerpts = test_excerpts(args.midi_dir / "asap_split.csv", args.midi_dir, args.pieces)
    prepare(args.work, conditions, excerpts, args.seconds)

    transcriber = Transcriber.load(args.checkpoint, rescore=not args.no_rescorer)
    fps = transcriber.config.frames_per_second
    pedal_path = pedal_checkpoint(args.checkpoint)
    pedal = PedalTranscriber.load(pedal_path, fps) if pedal_path.is_file() and not args.no_pedal else None
    tools = {"ours": {}, **{tool: {} for tool in peers}}
    busy_seconds = dict.fromkeys(tools, 0.0)
    audio_seconds, start = 0.0, time.perf_counter()
    for condition in conditions:
        wavs = [args.work / condition / f"{name}.wav" for name, _ in excerpts]
        references = {name: reference_notes(args.work / "reference" / f"{name}.mid", args.seconds)
                      for name, _ in excerpts}
        ours, pedal_scores = {}, []
        for wav in tqdm(wavs, desc=f"transcribe {condition}", unit="excerpt"):
            started = time.perf_counter()
            mel = transcriber.features_file(wav)
            ours[wav.stem] = transcriber.notes(transcriber.predict(mel))
            busy_seconds["ours"] += time.perf_counter() - started
            if pedal is not None:
                reference = read_note_sequence(args.work / "reference" / f"{wav.stem}.mid")
                pedal_scores.append(score_pedal(ours[wav.stem], pedal.intervals(mel), reference,
                                                references[wav.stem], args.seconds, fps))
        audio_seconds += args.seconds * len(wavs)
        estimates = {"ours": ours}
        for tool, binary in peers.items():
            estimates[tool], seconds = peer_notes(tool, binary, wavs, args.work / "peers" / tool / condition)
            busy_seconds[tool] += seconds
        for tool, notes in estimates.items():
            per_piece = [{**transcription_metrics(references[name], notes[name], fps),
                          "release-ghosts/share": release_ghost_share(references[name], notes[name])}
                         for name, _ in excerpts]
            tools[tool][condition] = {k: round(v, 4) for k, v in mean_metrics(per_piece).items() if k in KEPT}
        if pedal_scores:
            mean = {k: float(np.mean([p[k] for p in pedal_scores])) for k in PEDAL_KEPT}
            tools["ours"][condition].update({k: round(v, 4) for k, v in mean.items()})
        print(condition, "  ".join(f"{tool} note {tools[tool][condition]['note/f1']:.3f}" for tool in tools))
    rescorer = transcriber.rescorer is not None
    record.save("transcribe_robustness" + (f"_{args.label}" if args.label else ""), {
        "checkpoint": str(args.checkpoint), "checkpoint_sha256_16": content_id(args.checkpoint),
        "rescorer": rescorer, "pedal": pedal_path.name if pedal is not None else None,
        "excerpts": len(excerpts), "excerpt_seconds": args.seconds,
        "sample_rate_hz": SAMPLE_RATE_HZ, "realtime_factor": round(audio_seconds / (time.perf_counter() - start), 1),
        "speed_x_realtime": {tool: round(audio_seconds / max(seconds, 1e-9), 2)
                             for tool, seconds in busy_seconds.items()},
        "peers": {tool: str(binary) for tool, binary in peers.items()},
        "conditions": {c: dataclass_dict(augmentation(c)) for c in conditions},
        **{tool: by_condition for tool, by_condition in tools.items()},
    }, notes=f"The first {args.seconds:g} s of {len(excerpts)} ASAP test performances (an even spread), "
             f"references sustain-extended, means over excerpts. '{UNSEEN}' is never used in training or tuning. "
             "Peers' notes have their own sustain pedal applied. speed_x_realtime: audio seconds per second, "
             "the peers' whole commands (start-up included), ours in-process with the model loaded once.")
    print(markdown_table(tools, conditions))


def markdown_table(tools: dict[str, dict], conditions: list[str]) -> str:
    """One row per condition: each tool's note F1, then note-with-offset F1, frame F1, precision,
    recall and release-ghost share, tools separated by slashes."""
    columns = (("note F1", "note/f1"), ("note+offset F1", "note-with-offset/f1"), ("frame F1", "frame/f1"),
               ("precision", "note/precision"), ("recall", "note/recall"), ("ghosts %", "release-ghosts/share"))
    lines = ["| condition | " + " | ".join(title for title, _ in columns) + " |",
             "| --- |" + " --- |" * len(columns),
             f"| ({' / '.join(tools)}) |" + " |" * len(columns)]
    for condition in conditions:
        cells = [" / ".join(f"{100 * tools[t][condition][key]:.1f}" if key.startswith("release") else
                            f"{tools[t][condition][key]:.3f}" for t in tools) for _, key in columns]
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dataclass_dict(value: Augmentation) -> dict:
    return {k: v for k, v in vars(value).items() if v not in (None, 0.0, 1.0, (), "white") or k == "soundfont"}


if __name__ == "__main__":
    main()
