"""WaveNet rendering speed on this CPU, in seconds of audio per wall-clock second, on a --seconds
excerpt of an ASAP test performance (or the bundled example with --midi):

- `steady`: Synthesizer.render once warm (model loaded, graphs traced), the real stage code;
- `command`: the whole `w2m2w synthesize IN OUT` command on the excerpt, start-up included
  (Python, TensorFlow, the checkpoint, tracing, writing the WAV).

    python -m benchmarks.synthesize_speed [--checkpoint synthesize/checkpoints/default.keras] [--seconds 30]

Writes benchmarks/results/synthesize_speed.json (or `--name`). The figures depend on the load of
this shared 2-core machine: compare checkpoints in the same run (give several --checkpoint).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import record
from benchmarks.paths import REPO, SHARED_DATA

DEFAULT_PIECE = "midi/Chopin/Ballades/1/Ali01.mid"  # an ASAP test performance


def measure(checkpoint: Path, midi: Path, seconds: float) -> dict:
    from compose.data import window
    from stages.io.midi import apply_sustain, read_note_sequence, write_midi
    from synthesize.synthesizer import Synthesizer

    sequence = apply_sustain(read_note_sequence(midi))
    first = min(note.start_time for note in sequence.notes)
    excerpt = window(sequence, first, first + seconds)
    synthesizer = Synthesizer.load(checkpoint)
    synthesizer.render(window(excerpt, 0.0, 2.0))  # trace
    start = time.perf_counter()
    audio = synthesizer.render(excerpt)
    steady_wall = time.perf_counter() - start
    audio_seconds = len(audio) / synthesizer.config.sample_rate_hz
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "in" / "excerpt.mid"
        source.parent.mkdir()
        write_midi(excerpt, source)
        start = time.perf_counter()
        command = [str(REPO / ".venv" / "bin" / "w2m2w"), "synthesize", str(source.parent),
                   str(Path(scratch) / "out"), "--checkpoint", str(checkpoint)]
        subprocess.run(command, check=True, capture_output=True)
        command_wall = time.perf_counter() - start
    return {"model": synthesizer.config.name, "architecture": synthesizer.config.architecture,
            "parameters": synthesizer.model.count_params(), "audio_seconds": round(audio_seconds, 2),
            "steady_wall_seconds": round(steady_wall, 2),
            "steady_audio_seconds_per_second": round(audio_seconds / steady_wall, 2),
            "command_wall_seconds": round(command_wall, 2),
            "command_audio_seconds_per_second": round(audio_seconds / command_wall, 2)}


def main() -> None:
    from synthesize.synthesizer import DEFAULT_CHECKPOINT

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, nargs="+", default=[DEFAULT_CHECKPOINT])
    parser.add_argument("--midi", type=Path, default=SHARED_DATA / "asap" / DEFAULT_PIECE)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--name", default="synthesize_speed")
    args = parser.parse_args()
    figures = {str(checkpoint): measure(checkpoint, args.midi, args.seconds) for checkpoint in args.checkpoint}
    record.save(args.name, {"midi": str(args.midi), "seconds": args.seconds, "checkpoints": figures},
                notes="steady: Synthesizer.render once warm; command: the whole `w2m2w synthesize` on the excerpt, "
                      "start-up included. Shared 2-core CPU, other jobs running.")


if __name__ == "__main__":
    main()
