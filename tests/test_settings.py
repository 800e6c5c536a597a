"""Settings declared once (issue 60): the decoding settings' fields give `w2m2w transcribe`,
`maestro retranscribe` and `full` their options, and the one frozen object reaches the stage, the
Transcriber, the Prefect flow and Beam unchanged; a bad value is refused with the same words on
the command line and in Python."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline import build_parser, main
from stages import options
from stages.settings import Settings, add_arguments, from_namespace, setting
from transcribe.config import DecodingSettings, TranscriberConfig

DECODING = {"--onset-threshold", "--frame-threshold", "--min-note-ms", "--no-rescorer", "--no-note-ends",
            "--midi-tempo"}
# The options each command had before its settings were derived from DecodingSettings (written
# down from the hand-written parsers): none is gone, and retranscribe and full gain the decoding
# options `w2m2w transcribe` had.
BEFORE = {
    ("transcribe",): {"--checkpoint", "--csv", "--frame-threshold", "--max-seconds", "--midi-tempo", "--min-note-ms",
                      "--no-note-ends", "--no-rescorer", "--onset-threshold", "--overwrite", "--pedal",
                      "--save-probabilities", "--sequence"},
    ("maestro", "retranscribe"): {"--batch-size", "--checkpoint", "--composers", "--no-note-ends", "--splits",
                                  "--years"},
    ("full",): {"--composer", "--dask", "--finetune-steps", "--no-note-ends", "--primer-seconds", "--seconds",
                "--seed", "--stages", "--synthesizer", "--transcriber"},
}


class RecordingTask:
    """Stands in for one of the flow's Prefect tasks: keeps the keyword arguments it was called
    with, writes nothing and reports an empty stage (or what `returns` makes of its arguments)."""

    def __init__(self, returns=None):
        self.kwargs, self.returns = {}, returns

    def with_options(self, **_):
        return self

    def __call__(self, *args, **kwargs):
        self.kwargs.update(kwargs)
        return self.returns(*args) if self.returns else {"written": [], "skipped": [], "failed": []}


def subparser(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


@pytest.mark.parametrize("path", sorted(BEFORE))
def test_the_derived_options_are_the_old_ones_with_the_decoding_settings(path):
    found = {s for a in subparser(*path)._actions for s in a.option_strings} - {"-h", "--help"}
    assert found == BEFORE[path] | DECODING


def test_evaluate_transcribe_decodes_with_the_same_options_but_the_tempo():
    found = {s for a in subparser("evaluate", "transcribe")._actions for s in a.option_strings} - {"-h", "--help"}
    before = {"--checkpoint", "--excerpt-seconds", "--limit", "--no-note-ends", "--no-rescorer", "--out", "--split"}
    assert found == before | DECODING - {"--midi-tempo"}


def test_options_keep_their_defaults_and_switches():
    args = subparser("transcribe").parse_args(["in", "out"])
    assert from_namespace(DecodingSettings, args) == DecodingSettings()
    args = subparser("transcribe").parse_args(["in", "out", "--no-rescorer", "--no-note-ends", "--onset-threshold",
                                               "0.42", "--min-note-ms", "30", "--midi-tempo", "90"])
    assert from_namespace(DecodingSettings, args) == DecodingSettings(
        onset_threshold=0.42, min_note_ms=30.0, rescore=False, note_ends=False, midi_tempo=90.0)
    help_text = subparser("transcribe").format_help()
    assert "onset head probability that starts a note" in help_text and "--no-rescorer" in help_text


@pytest.mark.parametrize("command", [["transcribe", "in", "out"], ["maestro", "retranscribe", "in", "out"],
                                     ["full", "out"]])
def test_a_bad_value_is_a_usage_error_naming_the_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--onset-threshold", "1.5"])
    assert exit_info.value.code == 2
    assert "argument --onset-threshold: must be above 0 and below 1, not 1.5" in capsys.readouterr().err


@pytest.mark.parametrize("changes, message", [
    ({"onset_threshold": 1.5}, "onset_threshold must be above 0 and below 1, not 1.5"),
    ({"frame_threshold": float("nan")}, "frame_threshold must be a finite number"),
    ({"min_note_ms": -1}, "min_note_ms must be from 0"),
    ({"midi_tempo": "fast"}, "midi_tempo must be a number, not 'fast'"),
    ({"rescore": "no"}, "rescore must be True or False, not 'no'"),
])
def test_a_bad_value_in_python_is_a_value_error_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        DecodingSettings(**changes)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        DecodingSettings().replace(**changes)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):  # before a model is loaded
        from transcribe import transcribe

        transcribe("no-such.wav", **changes)


def test_settings_are_frozen_and_record_only_what_differs():
    settings = DecodingSettings(onset_threshold=0.42, rescore=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.onset_threshold = 0.5
    assert settings.changed() == {"onset_threshold": 0.42, "rescore": False}
    assert DecodingSettings().changed() == {}
    with pytest.raises(TypeError):
        DecodingSettings().replace(no_such_setting=1)


def test_a_new_field_is_a_new_option_with_its_check():
    @dataclasses.dataclass(frozen=True)
    class Example(Settings):
        top_p: float = setting(0.9, options.TOP_P, help="nucleus")
        mode: str = setting("a", ("a", "b"), "--style", help="which")
        loud: bool = setting(False, help="louder")

    parser = argparse.ArgumentParser()
    add_arguments(parser, Example)
    assert from_namespace(Example, parser.parse_args(["--top-p", "0.5", "--style", "b", "--loud"])) == Example(
        0.5, "b", True)
    with pytest.raises(ValueError, match="mode must be one of 'a', 'b', not 'c'"):
        Example(mode="c")


def test_the_transcriber_decodes_at_the_settings_it_is_given():
    config = TranscriberConfig.tiny()
    settings = DecodingSettings(onset_threshold=0.42, frame_threshold=0.3, min_note_ms=40.0)
    rng = np.random.default_rng(0)
    probs = {name: rng.uniform(0, 1, (200, 88)).astype(np.float32) ** 3
             for name in ("onsets", "offsets", "frames", "velocities")}
    from transcribe.transcriber import Transcriber, decode_probabilities

    transcriber = Transcriber(SimpleNamespace(config=config), settings=settings)
    assert transcriber.settings is settings
    assert (transcriber.config.onset_threshold, transcriber.config.frame_threshold) == (0.42, 0.3)
    at_config = decode_probabilities(probs, dataclasses.replace(config, onset_threshold=0.42, frame_threshold=0.3))
    notes = transcriber.notes(probs)
    assert len(notes) and np.array_equal(notes, at_config[at_config["offset_s"] - at_config["onset_s"] >= 0.04])


def test_the_stage_hands_its_settings_to_the_transcriber_and_records_them(checkpoints):
    from transcribe.stage import TranscribeStage

    settings = DecodingSettings(onset_threshold=0.42, rescore=False)
    stage = TranscribeStage(checkpoints / "transcriber.keras", settings)
    assert stage.transcriber.settings is settings and stage.transcriber.config.onset_threshold == 0.42
    assert stage.transcriber.rescorer is None
    assert {"onset_threshold": 0.42, "rescore": False}.items() <= stage.config().items()
    with pytest.raises(TypeError, match="DecodingSettings"):
        TranscribeStage(checkpoints / "transcriber.keras", {"onset_threshold": 0.42})


def test_the_commands_hand_one_settings_object_on(checkpoints, tmp_path, monkeypatch):
    import batch.retranscribe
    import flows.full
    import flows.server
    import transcribe.stage

    expected = DecodingSettings(onset_threshold=0.42, rescore=False, midi_tempo=90.0)
    argv = ["--onset-threshold", "0.42", "--no-rescorer", "--midi-tempo", "90"]
    seen = {}

    def stop(name):
        def record(*args, **kwargs):
            seen[name] = kwargs.get("decoding") or kwargs.get("config") or args
            raise ValueError("stop")
        return record

    monkeypatch.setattr(transcribe.stage, "TranscribeStage", stop("transcribe"))
    monkeypatch.setattr(batch.retranscribe, "run", lambda root, out, checkpoint, config, beam: stop("retranscribe")(
        config=config))
    monkeypatch.setattr(flows.full, "wave2midi2wave", stop("full"))
    monkeypatch.setattr(flows.server, "prefect_api", contextlib.nullcontext)
    (tmp_path / "in").mkdir()
    checkpoint = str(checkpoints / "transcriber.keras")
    assert main(["transcribe", str(tmp_path / "in"), str(tmp_path / "a"), "--checkpoint", checkpoint, *argv]) == 2
    assert main(["maestro", "retranscribe", str(tmp_path / "in"), str(tmp_path / "b"), "--checkpoint", checkpoint,
                 *argv]) == 2
    assert main(["full", str(tmp_path / "in"), str(tmp_path / "c"), "--transcriber", checkpoint, *argv]) == 2
    assert seen["transcribe"][1] == expected  # TranscribeStage(checkpoint, decoding, ...)
    assert seen["retranscribe"].decoding == expected and seen["full"] == expected


def test_the_flow_takes_the_settings_as_one_parameter_and_hands_them_to_the_task(checkpoints, tmp_path,
                                                                                   monkeypatch):
    import flows.full

    validated = flows.full.wave2midi2wave.validate_parameters({"decoding": {"onset_threshold": 0.42,
                                                                            "rescore": False}})
    settings = validated["decoding"]
    assert settings == DecodingSettings(onset_threshold=0.42, rescore=False)
    with pytest.raises(Exception, match="onset_threshold must be above 0 and below 1"):
        flows.full.wave2midi2wave.validate_parameters({"decoding": {"onset_threshold": 1.5}})

    task = RecordingTask()
    monkeypatch.setattr(flows.full.tasks, "transcribe", task)
    (tmp_path / "in").mkdir()
    flows.full.wave2midi2wave.fn(input_dir=tmp_path / "in", output_dir=tmp_path / "run", stages=["transcribe"],
                                 transcriber=checkpoints / "transcriber.keras", decoding=settings)
    assert task.kwargs["decoding"] is settings


# -- rendering settings (synthesize) ----------------------------------------------------------

def test_the_synthesize_commands_keep_their_options():
    from synthesize.config import RenderSettings

    found = {s for a in subparser("synthesize")._actions for s in a.option_strings} - {"-h", "--help"}
    assert found == {"--checkpoint", "--level", "--max-seconds", "--overwrite", "--seed", "--temperature"}
    found = {s for a in subparser("evaluate", "synthesize")._actions for s in a.option_strings} - {"-h", "--help"}
    assert found == {"--checkpoint", "--count", "--level", "--page", "--seconds", "--split", "--split-csv",
                     "--temperature", "--transcriber"}
    args = subparser("synthesize").parse_args(["in", "out", "--level", "450", "--temperature", "0.5", "--seed", "3"])
    assert from_namespace(RenderSettings, args) == RenderSettings(seed=3, temperature=0.5, output_rms_lsb=450.0)
    assert from_namespace(RenderSettings, subparser("synthesize").parse_args(["in", "out"])) == RenderSettings()


def test_a_bad_rendering_value_is_refused_by_name(capsys):
    from synthesize.config import RenderSettings

    with pytest.raises(SystemExit) as exit_info:
        main(["synthesize", "in", "out", "--level", "nan"])
    assert exit_info.value.code == 2 and "argument --level: must be a finite number" in capsys.readouterr().err
    with pytest.raises(ValueError, match="temperature must be from 0 to 100, not -1"):
        RenderSettings(temperature=-1)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        from synthesize import synthesize

        synthesize("no-such.mid", seed=1.5)


def test_the_synthesize_stage_hands_its_settings_to_the_synthesizer(checkpoints, tmp_path, monkeypatch):
    import flows.full
    from synthesize.config import RenderSettings
    from synthesize.stage import SynthesizeStage

    settings = RenderSettings(seed=7, temperature=0.5, output_rms_lsb=450.0)
    stage = SynthesizeStage(checkpoints / "synthesizer.keras", settings)
    assert stage.synthesizer.settings is settings
    assert (stage.synthesizer.seed, stage.synthesizer.generator.temperature, stage.synthesizer.output_rms_lsb) == (
        7, 0.5, 450.0)
    assert {"seed": 7, "temperature": 0.5, "output_rms_lsb": 450.0}.items() <= stage.config().items()

    task = RecordingTask()
    monkeypatch.setattr(flows.full.tasks, "synthesize", task)
    (tmp_path / "in").mkdir()
    flows.full.wave2midi2wave.fn(input_dir=tmp_path / "in", output_dir=tmp_path / "run", stages=["synthesize"],
                                 synthesizer=checkpoints / "synthesizer.keras", seed=11)
    assert task.kwargs["rendering"] == RenderSettings(seed=11)


# -- sampling settings (compose) --------------------------------------------------------------

def test_the_compose_command_keeps_its_options():
    from compose.config import SamplingSettings

    found = {s for a in subparser("compose")._actions for s in a.option_strings} - {"-h", "--help"}
    assert found == {"--candidates", "--checkpoint", "--composer", "--count", "--include-primer", "--infill",
                     "--max-tokens", "--no-grammar", "--notes-per-second", "--overwrite", "--plot", "--primer-seconds",
                     "--seconds", "--seed", "--temperature", "--top-k", "--top-p"}
    assert from_namespace(SamplingSettings, subparser("compose").parse_args(["out"])) == SamplingSettings()
    args = subparser("compose").parse_args(["out", "--no-grammar", "--top-p", "0.5", "--composer", "Chopin",
                                            "--include-primer", "--seconds", "12"])
    assert from_namespace(SamplingSettings, args) == SamplingSettings(
        seconds=12.0, top_p=0.5, in_grammar=False, composer="Chopin", include_primer=True)


def test_the_composer_and_its_stage_keep_the_settings_they_are_given(checkpoints, tmp_path, monkeypatch):
    import flows.full
    from compose.config import SamplingSettings
    from compose.stage import Composer, ComposeStage

    with pytest.raises(ValueError, match="top_p must be above 0 and at most 1, not 2"):
        SamplingSettings(top_p=2)
    settings = SamplingSettings(seconds=2.0, top_k=5, seed=3, include_primer=True)
    composer = Composer(checkpoints / "composer.keras", settings)
    assert composer.settings is settings
    same = Composer(checkpoints / "composer.keras", top_k=5, seconds=2.0, seed=3, include_primer=True)
    assert same.settings == settings
    config = ComposeStage(composer, 4.0).config()
    assert {k: config[k] for k in dataclasses.asdict(settings)} == dataclasses.asdict(settings)

    task = RecordingTask()
    monkeypatch.setattr(flows.full.tasks, "compose", task)
    monkeypatch.setattr(flows.full.tasks, "finetune_composer", RecordingTask(returns=lambda *args: str(args[2])))
    (tmp_path / "in").mkdir()
    flows.full.wave2midi2wave.fn(input_dir=tmp_path / "in", output_dir=tmp_path / "run", stages=["compose"],
                                 composer=checkpoints / "composer.keras", seconds=5.0, seed=2, include_primer=True)
    assert task.kwargs["sampling"] == SamplingSettings(seconds=5.0, seed=2, include_primer=True)
