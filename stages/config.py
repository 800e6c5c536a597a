"""What every model config shares: a frozen dataclass that round-trips through JSON, so a
checkpoint can carry its config and a run folder can pin it."""

from __future__ import annotations

import dataclasses
import json


class JsonConfig:
    """Mixin for frozen config dataclasses."""

    @classmethod
    def named(cls, name: str):
        """One of the presets every model config has: `paper`, `default` or `tiny`."""
        presets = ("paper", "default", "tiny")
        if name not in presets:
            raise ValueError(f"unknown {cls.__name__} {name!r}; choose from {', '.join(presets)}")
        return getattr(cls, name)()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict):
        """A config from a dict (e.g. parsed JSON): unknown keys ignored, lists back to tuples."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})
