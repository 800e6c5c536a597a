"""The first stage of the pipeline: any recording (format, rate, channels) -> 16 kHz mono WAV,
so every later stage reads one kind of audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stages.contract import InputError, Job, Stage
from stages.io.audio import AUDIO_SUFFIXES, SAMPLE_RATE_HZ, load_audio, write_wav

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
        from stages.io.audio import check_audio_header

        # From the header, before decoding: too long, or no recording at all (a sample rate of 1 Hz);
        # a header nothing reads is left to the decoder, which names the reason.
        check_audio_header(job.source, min_seconds=0.0, max_seconds=self.max_hours * 3600, option=None)
        audio = load_audio(job.source, self.sample_rate_hz)
        if float(np.abs(audio).max()) < SILENCE_PEAK:
            raise InputError("audio is silent (peak below -80 dBFS)")
        write_wav(temporaries["audio"], audio, self.sample_rate_hz)
