"""The first stage of the pipeline: any recording (format, rate, channels) -> 16 kHz mono WAV,
so every later stage reads one kind of audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stages.audio import AUDIO_SUFFIXES, SAMPLE_RATE_HZ, load_audio, write_wav
from stages.contract import InputError, Job, Stage

SILENCE_PEAK = 1e-4  # -80 dBFS


class NormalizeAudioStage(Stage):
    name = "normalize"
    input_suffixes = AUDIO_SUFFIXES
    output_suffixes = {"audio": ".wav"}

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ, max_hours: float = 6.0):
        self.sample_rate_hz, self.max_hours = sample_rate_hz, max_hours

    def config(self) -> dict[str, Any]:
        return {"sample_rate_hz": self.sample_rate_hz}

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        from stages.audio import audio_duration_seconds

        if audio_duration_seconds(job.source) > self.max_hours * 3600:
            raise InputError(f"recording is longer than {self.max_hours} hours")
        audio = load_audio(job.source, self.sample_rate_hz)
        if float(np.abs(audio).max()) < SILENCE_PEAK:
            raise InputError("audio is silent (peak below -80 dBFS)")
        write_wav(temporaries["audio"], audio, self.sample_rate_hz)
