"""Transcribe WAV files with basic-pitch 0.4 (its ONNX model), an independent transcriber for the
round trips of benchmarks/synthesize_quality.py. Runs inside the separate virtualenv that the
quality benchmark makes (basic-pitch installed with --no-deps, onnxruntime, and the few libraries
its inference imports), so this project's TensorFlow never meets basic-pitch's pins.

    runs/basic-pitch-venv/bin/python benchmarks/synthesize_basic_pitch.py OUT.json A.wav [B.wav ...]

Writes {wav path: [[onset_s, offset_s, pitch, velocity], ...]}, basic-pitch's default thresholds.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from basic_pitch import ICASSP_2022_MODEL_PATH
    from basic_pitch.inference import Model, predict

    out, paths = sys.argv[1], sys.argv[2:]
    model = Model(ICASSP_2022_MODEL_PATH)
    notes = {}
    for path in paths:
        _, _, events = predict(path, model)
        notes[path] = sorted([float(start), float(end), int(pitch), max(1, min(127, round(127 * float(amplitude))))]
                             for start, end, pitch, amplitude, _ in events)
    with open(out, "w") as handle:
        json.dump(notes, handle)


if __name__ == "__main__":
    main()
