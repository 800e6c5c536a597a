"""The Wave2Midi2Wave loop as one Prefect flow (MAESTRO-T, Hawthorne et al. 2019): a
MAESTRO-layout dataset's audio re-transcribed on Beam, the transcriptions written as a
MAESTRO-layout MIDI corpus, a composer trained (or fine-tuned) on that corpus, and scored on the
ground-truth and on the transcribed test split, with a record and a model card of it all.

  ROOT --retranscribe (Beam)--> OUT/transcription/ --corpus--> OUT/corpus/ --train--> OUT/composer/
       OUT/evaluation.json <--evaluate (ground truth and transcribed test)--+
       OUT/maestro-t.json, OUT/model-card.md <--card

Each step is a task cached on the contents of what it reads (`flows.tasks.content_key`), and is
run again when what it wrote is gone (`flows.full._while_outputs_exist`); the steps themselves
resume (re-transcription skips finished recordings, training goes on from its last epoch).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated, Literal

from prefect import flow, task
from pydantic import Field

from flows.full import _checkpoint, _while_outputs_exist
from flows.tasks import STAGE_TASK, heavy

FOLDERS = ("transcription", "corpus", "composer")


def midi_id(root: Path) -> str:
    """A hash of a MAESTRO-layout dataset's metadata and MIDI (not its audio): what the steps
    after re-transcription read of the source, so that their cache keys need not hash the audio."""
    from maestro.metadata import Dataset, find_metadata

    digest = hashlib.sha256()
    metadata = find_metadata(root)
    digest.update(metadata.read_bytes())
    dataset = Dataset.open(root, metadata)
    for record in sorted(dataset.records, key=lambda r: r.midi_filename):
        digest.update(record.midi_filename.encode())
        digest.update(dataset.midi_path(record).read_bytes())
    return digest.hexdigest()


@task(name="maestro-t-retranscribe", **STAGE_TASK)
def retranscribe(root: Path, out: Path, checkpoint: Path, note_ends: bool, beam_args: tuple[str, ...]) -> dict:
    """Every recording of ROOT transcribed on Beam (`batch.retranscribe.run`), with its metrics."""
    from batch import retranscribe as batch
    from batch.transcribed_corpus import claim_transcriptions
    from transcribe.config import DecodingSettings

    claim_transcriptions(out, checkpoint, note_ends)  # one folder, one transcriber's work
    with heavy():
        config = batch.RetranscribeConfig(decoding=DecodingSettings(note_ends=note_ends))
        summary = batch.run(str(root), str(out), str(checkpoint), config, beam_args)
    return {k: v for k, v in summary.items() if k != "per_recording"}


@task(name="maestro-t-corpus", **STAGE_TASK)
def corpus(root: str, source_midi: str, transcriptions: Path, out: Path, checkpoint: Path, note_ends: bool) -> dict:
    """The transcriptions as a MAESTRO-layout MIDI corpus (`batch.transcribed_corpus`);
    `source_midi` (midi_id of ROOT) keys the cache on the source's metadata and MIDI."""
    from batch.transcribed_corpus import write_corpus

    return write_corpus(root, transcriptions, out, checkpoint, note_ends)


@task(name="maestro-t-train", **STAGE_TASK)
def train(pieces_from: str, pieces_id: str, out: Path, composer_config: str, architecture: str, steps: int,
          initial: Path | None, seed: int, steps_per_epoch: int) -> str:
    """The composer trained on the train split of a MAESTRO-layout MIDI folder (the transcribed
    corpus, or the ground truth), `compose.on_maestro.train_on`; `pieces_id` (its midi_id) keys
    the cache on its metadata and MIDI."""
    from compose.on_maestro import train_on, training_config

    with heavy():
        config = training_config(composer_config, architecture, steps, initial)
        return str(train_on(pieces_from, out, config, steps, initial, seed, steps_per_epoch))


@task(name="maestro-t-evaluate", **STAGE_TASK)
def evaluate(checkpoint: Path, root: str, source_midi: str, corpus_dir: str, corpus_midi: str, out: Path, split: str,
             chunk_length: int | None, max_pieces: int | None, raw_only: bool) -> dict:
    """NLL per event on the ground truth's split and on the transcribed corpus' split, as
    OUT (evaluation.json); `source_midi` and `corpus_midi` (their midi_id) key the cache."""
    from compose.on_maestro import score_split
    from stages.contract import write_text_atomic

    with heavy():
        scores = {name: score_split(checkpoint, folder, split, chunk_length, max_pieces, raw_only)
                  for name, folder in (("ground_truth", root), ("transcribed", corpus_dir))}
    result = {"split": split, "checkpoint": str(checkpoint), **scores}
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    return result


@task(name="maestro-t-card", cache_key_fn=STAGE_TASK["cache_key_fn"], persist_result=True)
def card(out: Path, record: dict) -> dict:
    """OUT/maestro-t.json (the record) and OUT/model-card.md."""
    from stages.contract import write_text_atomic

    write_text_atomic(out / "maestro-t.json", json.dumps(record, indent=2, default=str) + "\n")
    write_text_atomic(out / "model-card.md", model_card(record))
    return record


def model_card(record: dict) -> str:
    """The composer trained on transcriptions, in Markdown."""
    transcriber, scores = record["transcriber"], record["evaluation"]
    rows = "\n".join(f"| {name.replace('_', ' ')} {scores['split']} | {s['nll_per_event']} | "
                     f"{s['nll_per_event_interval_95'][0]}-{s['nll_per_event_interval_95'][1]} | {s['pieces']} | "
                     f"{s['events']} |" for name, s in scores.items() if isinstance(s, dict))
    start = record["composer"]["from"] or f"random ({record['composer']['config']} config)"
    if record["composer"]["trained_on"] == "transcribed":
        title, what = "Composer trained on transcriptions (MAESTRO-T)", (
            "trained on the transcriptions of a MAESTRO-layout dataset's recordings instead of\nits performance MIDI")
    else:
        title, what = "Composer trained on ground-truth MIDI (the MAESTRO-T baseline)", (
            "trained on a MAESTRO-layout dataset's performance MIDI, scored as the one trained\non its transcriptions")
    model = {"relative": "Music Transformer", "absolute": "Transformer with absolute positions",
             "lstm": "LSTM"}[record["composer"]["architecture"]]
    splits = ", ".join(f"{name} {count}" for name, count in record["corpus"]["splits"].items())
    return f"""# {title}

A {model} {what}: the Wave2Midi2Wave loop (`w2m2w maestro-t`, flow `flows/maestro_t.py`).

- Dataset: `{record['dataset']}` ({record['corpus']['records']} recordings transcribed: {splits})
- Transcriber: `{transcriber['checkpoint']}`, content id `{transcriber['sha256_16']}`; its note F1 on this
  dataset: {record['corpus'].get('transcription_accuracy', {}).get('note/f1', 'n/a')}
- Composer: from {start}, {record['composer']['steps']} steps, seed {record['composer']['seed']}:
  `{record['composer']['checkpoint']}`

NLL per event (nats), chunks of {scores['ground_truth']['chunk_tokens']} tokens, 95% bootstrap interval over pieces:

| scored on | NLL | interval | pieces | events |
| --- | --- | --- | --- | --- |
{rows}
"""


def check_parameters(dataset: Path, output_dir: Path, checkpoints: dict) -> None:
    """What a user must fix fails here, before any task runs."""
    from maestro.metadata import find_metadata
    from stages.cli import check_paths

    if dataset.resolve() == output_dir.resolve():
        raise ValueError(f"the run folder is the dataset ({dataset}): choose another run folder")
    check_paths(dataset, output_dir, checkpoints)
    find_metadata(dataset)  # a MAESTRO layout: FileNotFoundError otherwise


@flow(name="wave2midi2wave", log_prints=True)
def maestro_t(
    dataset: Annotated[Path, Field(description="MAESTRO-layout dataset: audio, MIDI, maestro-v*.csv|json")],
    output_dir: Annotated[Path, Field(description="run folder: transcription/, corpus/, composer/, records")],
    transcriber: Annotated[Path | None, Field(description="transcriber .keras (default: shipped)")] = None,
    transcriptions: Annotated[Path | None, Field(
        description="re-transcription folder (default: OUT/transcription); another run's, to share its work")] = None,
    note_ends: Annotated[bool, Field(description="end notes with the rescorer's note-end network")] = True,
    composer_config: Annotated[Literal["tiny", "default", "paper"], Field(
        description="composer size and training settings (with from_checkpoint: its training settings)")
                               ] = "default",
    architecture: Annotated[Literal["relative", "absolute", "lstm"], Field(
        description="relative: Music Transformer; absolute, lstm: the baselines")] = "relative",
    train_on: Annotated[Literal["transcribed", "ground-truth"], Field(
        description="the train split the composer learns from: the transcriptions (MAESTRO-T), or the dataset's "
                    "own MIDI (the baseline of the same loop)")] = "transcribed",
    steps: Annotated[int, Field(gt=0, description="optimizer steps; the learning rate decays over them")] = 1_750,
    from_checkpoint: Annotated[Path | None, Field(description="fine-tune this composer .keras instead of "
                                                              "training from random weights")] = None,
    seed: Annotated[int, Field(description="training seed")] = 0,
    steps_per_epoch: Annotated[int, Field(gt=0)] = 250,
    split: Annotated[Literal["train", "validation", "test"], Field(description="the split scored")] = "test",
    chunk_length: Annotated[int | None, Field(gt=1, description="tokens per scored chunk (default: the "
                                                                "composer's training length; the paper: 2048)")
                            ] = None,
    max_pieces: Annotated[int | None, Field(gt=0, description="score an even spread of this many pieces")] = None,
    raw_only: Annotated[bool, Field(description="score the raw probability only (no grammar; faster)")] = False,
    beam_args: Annotated[list[str], Field(description="Apache Beam options for re-transcription")] = [],  # noqa: B006
) -> dict:
    dataset, output_dir = Path(dataset), Path(output_dir)
    transcriber = _checkpoint(transcriber, "transcribe")
    check_parameters(dataset, output_dir, {"transcriber": transcriber, "composer": from_checkpoint})
    folders = {name: output_dir / name for name in FOLDERS}
    timings: dict[str, float] = {}

    def timed(name, function, *args):
        started = time.perf_counter()
        result = function(*args)
        timings[name] = round(time.perf_counter() - started, 3)
        return result

    transcription = Path(transcriptions) if transcriptions else folders["transcription"]
    retranscribed = timed("retranscribe", _while_outputs_exist(retranscribe, transcription / "retranscription.json"),
                          dataset, transcription, transcriber, note_ends, tuple(beam_args))
    source_midi = midi_id(dataset)
    written = timed("corpus", _while_outputs_exist(corpus, folders["corpus"] / "transcribed_by.json"),
                    str(dataset), source_midi, transcription, folders["corpus"], transcriber, note_ends)
    corpus_midi = midi_id(folders["corpus"])
    pieces_from, pieces_id = ((folders["corpus"], corpus_midi) if train_on == "transcribed" else (dataset, source_midi))
    best = Path(timed("train", _while_outputs_exist(train, folders["composer"] / "best.keras"), str(pieces_from),
                      pieces_id, folders["composer"], composer_config, architecture, steps, from_checkpoint, seed,
                      steps_per_epoch))
    scores = timed("evaluate", _while_outputs_exist(evaluate, output_dir / "evaluation.json"), best, str(dataset),
                   source_midi, str(folders["corpus"]), corpus_midi, output_dir / "evaluation.json", split,
                   chunk_length, max_pieces, raw_only)
    record = {"dataset": str(dataset), "transcriber": written["transcriber"],
              "corpus": {k: v for k, v in written.items() if k not in ("transcriber", "written")},
              "transcription_failed": retranscribed["failed"],
              "composer": {"checkpoint": str(best), "from": str(from_checkpoint) if from_checkpoint else None,
                           "trained_on": train_on, "config": composer_config, "architecture": architecture,
                           "steps": steps, "seed": seed},
              "evaluation": scores}
    timed("card", _while_outputs_exist(card, output_dir / "maestro-t.json", output_dir / "model-card.md"),
          output_dir, record)
    return {**record, "step_seconds": timings, "output_dir": str(output_dir)}


def run_maestro_t(settings, beam_args=(), verbose: bool = False) -> int:
    """`w2m2w maestro-t`: the loop under `settings.out`, OUT/summary.json and its figures on the
    terminal; exit status 1 when some recording failed to transcribe."""
    from flows.server import prefect_api, quiet_runs
    from stages.contract import write_text_atomic

    s, beam_args = settings, quiet_runs(verbose, beam_args)
    with prefect_api():
        summary = maestro_t(dataset=s.dataset, output_dir=s.out, transcriber=s.transcriber,
                            transcriptions=s.transcriptions, note_ends=not s.no_note_ends, train_on=s.train_on,
                            composer_config=s.composer_config, architecture=s.architecture, steps=s.steps,
                            from_checkpoint=s.from_checkpoint, seed=s.seed, steps_per_epoch=s.steps_per_epoch,
                            split=s.split, chunk_length=s.chunk_length, max_pieces=s.max_pieces,
                            raw_only=s.raw_only, beam_args=beam_args)
    s.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(s.out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    corpus, scores = summary["corpus"], summary["evaluation"]
    print(f"corpus: {corpus['records']} transcribed recordings {corpus['splits']}, "
          f"{len(corpus['missing'])} missing (transcriber {summary['transcriber']['sha256_16']})")
    for name in ("ground_truth", "transcribed"):
        score = scores[name]
        interval = score["nll_per_event_interval_95"]
        print(f"NLL per event on the {name.replace('_', '-')} {scores['split']} split: {score['nll_per_event']} "
              f"(95% {interval[0]}-{interval[1]}, {score['pieces']} pieces)")
    print(f"-> {s.out} (maestro-t.json, model-card.md, summary.json)")
    return 0 if not summary["transcription_failed"] else 1
