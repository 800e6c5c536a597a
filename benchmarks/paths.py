"""Where the checkout keeps what the benchmarks read: the repository, and the shared data beside it
(ASAP in asap/, the real MAESTRO recording in maestro_clip/). The packages know neither: a
benchmark passes these paths to them."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
