"""The public API: `from transcribe import Transcriber, transcribe` and the same for compose and
synthesize; each plain function takes MIDI or audio paths (or PrettyMIDI) and returns PrettyMIDI or
(audio, sample rate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile

from tests.conftest import make_midi, phrase

pytestmark = pytest.mark.slow  # each test loads and runs models through the one-call API

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "recordings" / "bach_prelude_bwv846_bars1-8"


def test_importing_the_packages_does_not_load_tensorflow():
    code = ("import sys, transcribe, compose, synthesize, transcribe.cli, compose.cli, synthesize.cli; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_classes_are_the_ones_the_stages_use():
    import compose
    import synthesize
    import transcribe
    from compose.stage import Composer
    from synthesize.stage import Synthesizer
    from transcribe.transcriber import Transcriber

    assert (transcribe.Transcriber, compose.Composer, synthesize.Synthesizer) == (Transcriber, Composer, Synthesizer)
    assert transcribe.Transcriber.__module__ == "transcribe.transcriber"
    assert compose.Composer.__module__ == "compose.composer"
    assert synthesize.Synthesizer.__module__ == "synthesize.synthesizer"
    with pytest.raises(AttributeError):
        transcribe.no_such_name  # noqa: B018


def test_transcribe_returns_pretty_midi_at_the_tempo_asked(tmp_path):
    from transcribe import transcribe

    audio, rate = soundfile.read(f"{EXAMPLE}.wav", dtype="float32")
    soundfile.write(tmp_path / "excerpt.wav", audio[: 4 * rate], rate)
    midi = transcribe(tmp_path / "excerpt.wav", midi_tempo=90.0, min_note_ms=50.0)
    assert isinstance(midi, pretty_midi.PrettyMIDI)
    notes = midi.instruments[0].notes
    assert len(notes) >= 8 and all(n.end - n.start >= 0.05 - 1e-3 for n in notes)
    assert midi.get_tempo_changes()[1][0] == pytest.approx(90.0, abs=0.01)
    # A longer minimum length only removes notes.
    assert len(transcribe(tmp_path / "excerpt.wav", min_note_ms=400.0).instruments[0].notes) < len(notes)


def test_transcriber_settings_replace_the_checkpoint_thresholds(checkpoints):
    from transcribe import Transcriber

    transcriber = Transcriber.load(checkpoints / "transcriber.keras", onset_threshold=0.3, frame_threshold=0.2)
    assert (transcriber.config.onset_threshold, transcriber.config.frame_threshold) == (0.3, 0.2)
    with pytest.raises(ValueError, match="onset_threshold must be above 0 and below 1"):
        Transcriber.load(checkpoints / "transcriber.keras", onset_threshold=1.5)


def test_compose_continues_pretty_midi_or_a_path(checkpoints, tmp_path):
    from compose import compose

    path = make_midi(tmp_path / "primer.mid", phrase(0, 3.0))
    for primer in (path, pretty_midi.PrettyMIDI(str(path))):
        whole = compose(primer, seconds=2.0, checkpoint=checkpoints / "composer.keras", max_tokens=24, seed=1,
                        include_primer=True)
        assert isinstance(whole, pretty_midi.PrettyMIDI)
        starts = sorted(n.start for n in whole.instruments[0].notes)
        assert starts[:3] == pytest.approx([n[0] for n in phrase(0, 3.0)[:3]], abs=0.01)  # the primer first
    new = compose(path, seconds=2.0, checkpoint=checkpoints / "composer.keras", max_tokens=24, seed=1)
    primer_notes = len(phrase(0, 3.0))
    assert sum(len(i.notes) for i in new.instruments) == len(whole.instruments[0].notes) - primer_notes  # by default


def test_synthesize_returns_audio_and_its_sample_rate(checkpoints, tmp_path):
    from synthesize import synthesize

    midi = pretty_midi.PrettyMIDI(str(make_midi(tmp_path / "a.mid", [(0.0, 0.3, 60, 80)])))
    audio, rate = synthesize(midi, checkpoint=checkpoints / "synthesizer.keras")
    assert rate == 16_000 and audio.dtype == np.float32 and audio.ndim == 1
    assert 0.3 * rate <= len(audio) <= 2 * rate and np.isfinite(audio).all()
    with pytest.raises(TypeError, match="PrettyMIDI"):
        synthesize(3, checkpoint=checkpoints / "synthesizer.keras")
