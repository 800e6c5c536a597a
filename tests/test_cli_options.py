"""Every `w2m2w` subcommand keeps its options: for each parser reached through the subcommands, the
(option strings, dest, default, choices, nargs, required) of every argument are compared with
tests/golden/cli_options.json, written from the parser before its options were derived from settings
dataclasses (issue 60). Users' scripts depend on these; a change here is a change to the interface,
made on purpose by regenerating the file:

    PYTHONPATH=$PWD python tests/test_cli_options.py
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden" / "cli_options.json"


def option_sets() -> dict[str, list[list]]:
    """{"train transcribe": [[option strings, dest, default, choices, nargs, required], ...], ...}."""
    from pipeline import build_parser

    def default(action) -> str:  # the machine's cores vary
        if action.dest == "workers" and action.default == (os.cpu_count() or 1):
            return "<cores>"
        return repr(action.default)

    found = {}

    def walk(parser, path):
        rows = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
                rows.append([[], action.dest, sorted(action.choices), None, None, action.required])
                continue
            choices = list(action.choices) if action.choices is not None else None
            rows.append([action.option_strings, action.dest, default(action), choices, action.nargs, action.required])
        found[" ".join(path) or "w2m2w"] = sorted(rows, key=lambda row: row[1])

    walk(build_parser(), [])
    return found


def test_every_subcommand_keeps_its_options():
    expected = json.loads(GOLDEN.read_text())
    found = json.loads(json.dumps(option_sets()))  # tuples as lists, as stored
    assert sorted(found) == sorted(expected)
    for command in expected:
        assert found[command] == expected[command], command


if __name__ == "__main__":
    commands = [f" {json.dumps(name)}: [\n" + ",\n".join(f"  {json.dumps(row)}" for row in rows) + "\n ]"
                for name, rows in sorted(option_sets().items())]  # one argument a line, for readable diffs
    GOLDEN.write_text("{\n" + ",\n".join(commands) + "\n}\n")
    print(f"wrote {GOLDEN}")


def test_settings_fields_of_several_values_check_each_and_list_defaults_are_not_shared():
    import pytest

    from compose.settings import ComposeFiles
    from maestro.settings import Subset

    assert ComposeFiles(out=Path("x"), infill=[1.0, 2.0]).infill == [1.0, 2.0]
    with pytest.raises(ValueError, match="infill must be a finite number"):
        ComposeFiles(out=Path("x"), infill=[1.0, float("nan")])
    first, second = Subset(), Subset()
    first.every.append("test=2")
    assert second.every == ["train=6", "validation=4"] and Subset().changed() == {}


def test_a_command_refuses_what_its_settings_refuse_before_loading_its_job(tmp_path, capsys):
    from pipeline import main

    (tmp_path / "piece.mid").touch()
    assert main(["compose", "--infill", "3", "1", str(tmp_path / "piece.mid"), str(tmp_path / "out")]) == 2
    assert "--infill START END needs START before END" in capsys.readouterr().err
    assert main(["train", "synthesize", str(tmp_path), str(tmp_path / "run"), "--adversarial-weight", "2"]) == 2
    assert "need --config adversarial" in capsys.readouterr().err
