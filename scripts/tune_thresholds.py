"""Choose the transcriber's onset and frame thresholds on validation spans (never on test).

    python scripts/tune_thresholds.py CACHE_DIR [--checkpoint transcribe/checkpoints/default.keras] [--spans 64]

CACHE_DIR is the training feature cache (`<tfrecords>/transcription-cache`). Predicts each span
once, decodes it at every threshold pair, and prints the pairs ranked by note F1 + frame F1.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transcribe.dataset import ShardCache, span_notes  # noqa: E402
from transcribe.decode import decode_notes  # noqa: E402
from transcribe.infer import DEFAULT_CHECKPOINT, Transcriber  # noqa: E402
from transcribe.metrics import mean_metrics, transcription_metrics  # noqa: E402

GRID = (0.2, 0.3, 0.4, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--spans", type=int, default=64)
    args = parser.parse_args()
    transcriber = Transcriber.load(args.checkpoint)
    fps = transcriber.config.frames_per_second
    caches = [ShardCache.open(p) for p in sorted(args.cache_dir.glob("validation.tfrecord-*"))]
    everything = [(c, s) for c, cache in enumerate(caches) for s in range(len(cache.spans))]
    chosen = [everything[i] for i in np.random.default_rng(1).choice(len(everything), args.spans, replace=False)]
    predictions = []
    for c, s in chosen:
        first, length = caches[c].spans[s]
        probs = transcriber.predict(np.asarray(caches[c].features[first:first + length], np.float32))
        predictions.append((span_notes(caches[c], s), probs))
    results = []
    for onset, frame in itertools.product(GRID, GRID):
        metrics = mean_metrics([transcription_metrics(reference, decode_notes(p["frames"], p["onsets"], p["velocities"],
                                                                              fps, frame, onset), fps)
                                for reference, p in predictions])
        results.append((metrics["note/f1"] + metrics["frame/f1"], onset, frame, metrics))
    for score, onset, frame, m in sorted(results, reverse=True)[:8]:
        print(f"onset {onset:.1f} frame {frame:.1f}: note {m['note/f1']:.4f} frame {m['frame/f1']:.4f} "
              f"note+offset {m['note-with-offset/f1']:.4f} +velocity {m['note-with-offset-and-velocity/f1']:.4f}")


if __name__ == "__main__":
    main()
