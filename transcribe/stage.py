"""`w2m2w transcribe IN OUT`: the transcription stage over a folder of recordings."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from stages import options
from stages.checkpoints import check_checkpoint, load_checkpoint, require_config
from stages.contract import InputError, Job, Stage, UsageError, content_id
from stages.io.audio import AUDIO_SUFFIXES, MIN_AUDIO_SECONDS, check_audio_header
from stages.io.midi import write_midi
from transcribe.config import DecodingSettings
from transcribe.pedal.pedal import PedalTranscriber, add_pedal, key_releases, pedal_checkpoint
from transcribe.rescorer.rescore import rescorer_path
from transcribe.transcriber import DEFAULT_CHECKPOINT, Transcriber, sequence_at_tempo


def write_notes_csv(notes: np.ndarray, path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["onset_s", "offset_s", "pitch", "velocity"])
        writer.writerows((f"{n['onset_s']:.4f}", f"{n['offset_s']:.4f}", int(n["pitch"]), int(n["velocity"]))
                         for n in notes)


#: Two hours: the longest concert work in MAESTRO lasts under 50 minutes; an hour of audio takes
#: about 300 MB here (features and probabilities), so the default keeps a run under 2 GB.
MAX_SECONDS = 7200.0


def check_long_enough(path: Path, max_seconds: float | None = None) -> None:
    """InputError for a recording too short to transcribe, too long (beyond `max_seconds`) or
    not audio at all (a sample rate below 1 kHz), all from its header, before it is decoded; a file
    whose header cannot be read is left to the decoder, which names the reason."""
    check_audio_header(path, MIN_AUDIO_SECONDS, max_seconds)


class TranscribeStage(Stage):
    """Recording -> `.midi` (and on request the NoteSequence `.pb`, a `.csv` of notes and the
    heads' probabilities `.npz`).

    `decoding` (transcribe.config.DecodingSettings) is how notes are decoded and the MIDI's tempo,
    handed unchanged to the Transcriber. `pedal` is "baked" (notes last as long as they sound, the
    pedal's hold included: the MAESTRO protocol) or "cc64" (the pedal network beside the checkpoint
    writes CC 64 events and notes end where their keys were let go: what a score editor or a
    sequencer wants).
    """

    name = "transcribe"
    input_suffixes = AUDIO_SUFFIXES

    def __init__(self, checkpoint: Path | str = DEFAULT_CHECKPOINT, decoding: DecodingSettings = DecodingSettings(),
                 sequence: bool = False, notes_csv: bool = False, probabilities: bool = False, pedal: str = "baked",
                 max_seconds: float = MAX_SECONDS):
        if not isinstance(decoding, DecodingSettings):
            raise TypeError(f"decoding must be DecodingSettings, not {type(decoding).__name__}")
        self.max_seconds = options.POSITIVE.check(max_seconds, "max_seconds")
        self.checkpoint = check_checkpoint(checkpoint, "transcriber")
        decoding.check_for(self.checkpoint)
        if pedal not in ("baked", "cc64"):
            raise ValueError(f"pedal must be 'baked' or 'cc64', not {pedal!r}")
        if pedal == "cc64":
            network = pedal_checkpoint(self.checkpoint)
            if not network.exists():
                raise UsageError(f"--pedal cc64 needs the pedal network beside the transcriber: "
                                 f"{network} not found (`w2m2w train pedal` makes one)")
            check_checkpoint(network, "pedal network")
        self.decoding, self.pedal_mode = decoding, pedal
        self.checkpoint_id = content_id(self.checkpoint)
        self.output_suffixes = {"midi": ".midi"}
        if sequence:
            self.output_suffixes["sequence"] = ".pb"
        if notes_csv:
            self.output_suffixes["notes"] = ".csv"
        if probabilities:
            self.output_suffixes["probabilities"] = ".npz"
        self._transcriber: Transcriber | None = None
        self._pedal: PedalTranscriber | None = None

    def __getstate__(self):  # worker processes load their own models
        return {**self.__dict__, "_transcriber": None, "_pedal": None}

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = Transcriber.load(self.checkpoint, self.decoding)
        return self._transcriber

    @property
    def pedal(self) -> PedalTranscriber | None:
        if self._pedal is None and self.pedal_mode == "cc64":
            self._pedal = PedalTranscriber.load(pedal_checkpoint(self.checkpoint),
                                                self.transcriber.config.frames_per_second)
        return self._pedal

    def prepare(self) -> None:
        from transcribe.config import TranscriberConfig

        transcriber = load_checkpoint(lambda: self.transcriber, self.checkpoint, "transcriber")
        require_config(transcriber.model, TranscriberConfig, self.checkpoint, "transcriber")
        if self.pedal_mode == "cc64":
            load_checkpoint(lambda: self.pedal, pedal_checkpoint(self.checkpoint), "pedal network")

    def config(self) -> dict[str, Any]:
        rescorer = rescorer_path(self.checkpoint)
        config = {"checkpoint": self.checkpoint.name, "checkpoint_sha256": self.checkpoint_id,
                  "rescorer_sha256": content_id(rescorer) if rescorer.is_file() else None}
        if self.pedal_mode == "cc64":
            config["pedal_sha256"] = content_id(pedal_checkpoint(self.checkpoint))
            config["pedal"] = "cc64"
        # Settings named only when not their defaults, so that folders written before one existed still match.
        return {**config, **self.decoding.changed()}

    def process(self, job: Job, temporaries: dict[str, Path]) -> None:
        check_long_enough(job.source, self.max_seconds)
        mel = self.transcriber.features_file(job.source)
        probs = self.transcriber.predict(mel)
        notes = self.transcriber.notes(probs)
        if not len(notes):  # an empty MIDI file is no transcription
            raise InputError("no notes heard: the transcriber found no piano note in the recording, nothing written")
        intervals = self.pedal.intervals(mel) if self.pedal is not None else None
        del mel
        if intervals is not None:
            notes = key_releases(notes, intervals)
        sequence = sequence_at_tempo(notes, self.decoding.midi_tempo)
        if intervals is not None:
            add_pedal(sequence, intervals)
        write_midi(sequence, temporaries["midi"])
        if "sequence" in temporaries:
            temporaries["sequence"].write_bytes(sequence.SerializeToString(deterministic=True))
        if "notes" in temporaries:
            write_notes_csv(notes, temporaries["notes"])
        if "probabilities" in temporaries:
            write_probabilities(probs, self.transcriber.config.frames_per_second, temporaries["probabilities"])


def write_probabilities(probs: dict[str, np.ndarray], frames_per_second: float, path: Path) -> None:
    """The heads' probabilities, (frames, 88) float16 each (key 0 is A0), and their frame rate,
    as a compressed NPZ."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, frames_per_second=np.float32(frames_per_second),
                        **{name: values.astype(np.float16) for name, values in probs.items()})
    path.write_bytes(buffer.getvalue())


def transcribe_files(files, decoding: DecodingSettings) -> int:
    """`w2m2w transcribe`: every input (a recording or a folder) under `files.out`, refusing inputs
    that would write the same file; prints the report, returns the exit status (1: some failed)."""
    from stages.checkpoints import checkpoint_for
    from stages.contract import StageReport

    stage = TranscribeStage(checkpoint_for("transcribe", files.checkpoint), decoding, sequence=files.sequence,
                            notes_csv=files.csv, probabilities=files.save_probabilities, pedal=files.pedal,
                            max_seconds=files.max_seconds)
    if len(files.inputs) == 1:
        report = stage.run(files.inputs[0], files.out, overwrite=files.overwrite)
    else:
        outputs: dict[Path, Path] = {}  # output -> the input it comes from, across all inputs
        for inputs in files.inputs:
            for job in stage.plan(inputs, files.out):
                for target in job.targets.values():
                    if target in outputs:
                        raise ValueError(f"{job.source} and {outputs[target]} would both be written to {target}; "
                                         "transcribe them into separate folders")
                    outputs[target] = job.source
        report = StageReport(stage=stage.name, output_dir=str(files.out))
        for inputs in files.inputs:
            part = stage.run(inputs, files.out, overwrite=files.overwrite)
            report.written += part.written
            report.skipped += part.skipped
            report.failed += part.failed
    print(report.summary())
    return 0 if report.ok else 1
