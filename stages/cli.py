"""Small helpers shared by the command-line modules."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def cores() -> int:
    return os.cpu_count() or 1


def csv_list(text: str) -> tuple[str, ...]:
    """'a, b,c' -> ('a', 'b', 'c'): argparse type for comma-separated options."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
