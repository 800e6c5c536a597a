"""`w2m2w synthesize IN OUT`: render every MIDI file of a folder to WAV with the WaveNet."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from stages import options
from stages.checkpoints import check_checkpoint, load_checkpoint, require_config
from stages.contract import InputError, Job, Stage, content_id, on_terminal
from stages.io.audio import checked_output, write_wav
from stages.io.midi import MIDI_SUFFIXES, playable, read_note_sequence
from synthesize.conditioning import piece_seconds
from synthesize.config import RenderSettings
from synthesize.synthesizer import DEFAULT_CHECKPOINT, Synthesizer  # noqa: F401 (re-exported)

MAX_SECONDS = 1200.0  # 20 minutes of audio: hours of CPU time; longer asks for --max-seconds


class SynthesizeStage(Stage):
    """MIDI -> `.wav` (16-bit, the model's sample rate)."""

    name = "synthesize"
    input_suffixes = MIDI_SUFFIXES
    output_suffixes = {"audio": ".wav"}

    def __init__(self, checkpoint: Path | str = DEFAULT_CHECKPOINT, rendering: RenderSettings = RenderSettings(),
                 max_seconds: float = MAX_SECONDS):
        if not isinstance(rendering, RenderSettings):
            raise TypeError(f"rendering must be RenderSettings, not {type(rendering).__name__}")
        self.max_seconds = options.POSITIVE.check(max_seconds, "max_seconds")
        self.checkpoint, self.rendering = check_checkpoint(checkpoint, "synthesizer"), rendering
        self.checkpoint_id = content_id(self.checkpoint)
        self._synthesizer: Synthesizer | None = None

    def __getstate__(self):  # worker processes load their own model
        return {**self.__dict__, "_synthesizer": None}

    @property
    def synthesizer(self) -> Synthesizer:
        if self._synthesizer is None:
            self._synthesizer = Synthesizer.load(self.checkpoint, self.rendering)
        return self._synthesizer

    def prepare(self) -> None:
        from synthesize.config import SynthesizerConfig

        synthesizer = load_checkpoint(lambda: self.synthesizer, self.checkpoint, "synthesizer")
        require_config(synthesizer.model, SynthesizerConfig, self.checkpoint, "synthesizer")

    def config(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint.name, "checkpoint_sha256": self.checkpoint_id,
                **dataclasses.asdict(self.rendering)}

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        sequence = playable(read_note_sequence(job.source))
        seconds = piece_seconds(sequence)  # from the notes' times: the roll is built only once this passes
        if seconds > self.max_seconds:
            raise InputError(f"the piece lasts {seconds:.0f} s (sustain pedal included), more than the "
                             f"{self.max_seconds:g} s allowed (--max-seconds)")
        # Slow work: show the seconds rendered and the time left.
        with tqdm(total=round(seconds, 1), desc=job.relative.name, unit="s audio", leave=False,
                  disable=not on_terminal(),
                  bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]") as bar:
            audio = self.synthesizer.render(sequence, progress=lambda s: bar.update(min(s, bar.total - bar.n)))
        audio = checked_output(audio, "the rendered audio")  # never NaN, silence or beyond full scale
        write_wav(temporaries["audio"], audio, self.synthesizer.config.sample_rate_hz)


def synthesize_files(files, rendering) -> int:
    """`w2m2w synthesize`: every MIDI file under `files.inputs` rendered; prints the report."""
    from stages.checkpoints import checkpoint_for

    stage = SynthesizeStage(checkpoint_for("synthesize", files.checkpoint), rendering, max_seconds=files.max_seconds)
    report = stage.run(files.inputs, files.out, overwrite=files.overwrite)
    print(report.summary())
    return 0 if report.ok else 1
