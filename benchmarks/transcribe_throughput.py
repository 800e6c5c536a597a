"""Transcription throughput (seconds of audio per wall-clock second) and peak memory on a
one-hour recording, with the shipped default model, through the real command line.

    python -m benchmarks.transcribe_throughput [--dataset data/asap-maestro] [--minutes 60]

The recording is the dataset's test-split renders joined end to end (44.1 kHz stereo WAV, as a
user's file would be, so decoding and resampling count too). Writes
benchmarks/results/transcribe_throughput.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from benchmarks import record
from maestro.metadata import Dataset
from stages.io.audio import load_audio, resample


def long_recording(dataset: Path, minutes: float, path: Path) -> float:
    data = Dataset.open(dataset)
    pieces, total = [], 0.0
    for record_ in data.select(splits=["test"]):
        audio = load_audio(data.audio_path(record_))
        pieces.append(audio)
        total += len(audio) / 16000
        if total >= minutes * 60:
            break
    audio = np.concatenate(pieces)[: int(minutes * 60 * 16000)]
    audio = resample(audio, 16000, 44100)
    soundfile.write(path, np.stack([audio, audio], axis=1), 44100, subtype="PCM_16")
    return len(audio) / 44100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/asap-maestro"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "in").mkdir()
        # Built in a process of its own: a child forked from a parent holding an hour of audio
        # would be charged the parent's pages in its peak memory.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            seconds = pool.apply(long_recording, (args.dataset, args.minutes, scratch / "in" / "long.wav"))
        command = [sys.executable, str(Path(__file__).resolve().parents[1] / "pipeline.py"), "transcribe",
                   str(scratch / "in"), str(scratch / "out")]
        if args.checkpoint:
            command += ["--checkpoint", str(args.checkpoint)]
        start = time.perf_counter()
        process = subprocess.Popen(command)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"transcription failed with status {status}")
        peak_gb = usage.ru_maxrss / 2**20
    record.save("transcribe_throughput", {
        "audio_seconds": round(seconds, 1),
        "wall_seconds": round(wall, 1),
        "audio_seconds_per_second": round(seconds / wall, 1),
        "peak_memory_gb": round(peak_gb, 2),
        "input": "44.1 kHz stereo 16-bit WAV",
    }, notes="Whole process: start-up, decoding, resampling, features, model, decoding, MIDI writing.")


if __name__ == "__main__":
    main()
