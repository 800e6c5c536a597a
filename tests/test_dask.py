"""The Beam jobs on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1,
started and stopped here. Each job's outputs equal the local runner's (MIDI and TFRecords byte
for byte, audio within float tolerance), the work runs in the workers, each DoFn is set up once
per worker, and a worker killed in the middle of a file loses nothing."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import soundfile

from stages.io.normalize import NormalizeAudioStage

pytestmark = pytest.mark.slow  # a two-process Dask cluster, Beam jobs and a Prefect flow on it

distributed = pytest.importorskip("distributed")

LOCAL = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def client():
    """A client of a two-worker, one-thread-each cluster of separate processes."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture
def on_dask(client):
    return ["--runner=DaskRunner", f"--dask_client_address={client.scheduler.address}"]


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


class Record(beam.DoFn):
    """Notes which process set it up and which processed each element."""

    def __init__(self, folder: str):
        self.folder = folder

    def setup(self):
        with open(os.path.join(self.folder, f"setup-{os.getpid()}"), "a") as handle:
            handle.write("x")

    def process(self, element):
        time.sleep(0.3)  # long enough for the scheduler to hand elements to both workers
        with open(os.path.join(self.folder, f"element-{element}"), "w") as handle:
            handle.write(str(os.getpid()))
        if element % 3 == 0:
            yield beam.pvalue.TaggedOutput("threes", element)
        else:
            yield element


def test_the_runner_sets_up_once_per_worker_and_keeps_tags_batches_and_every_leaf(client, on_dask, tmp_path):
    from maestro.preprocess import pipeline_options

    options, runner = pipeline_options(on_dask)
    with beam.Pipeline(runner=runner, options=options) as pipeline:
        outputs = (pipeline | beam.Create(range(12), reshuffle=False)
                   | beam.ParDo(Record(str(tmp_path))).with_outputs("threes", main="others"))
        (outputs.others | beam.BatchElements(min_batch_size=5, max_batch_size=5)  # a last batch of 3
         | beam.FlatMap(lambda batch: batch) | "Others" >> beam.combiners.ToList()
         | "SaveOthers" >> beam.Map(lambda items: (tmp_path / "others.json").write_text(json.dumps(sorted(items)))))
        (outputs.threes | "Threes" >> beam.combiners.ToList()
         | "SaveThrees" >> beam.Map(lambda items: (tmp_path / "threes.json").write_text(json.dumps(sorted(items)))))
        (pipeline | "Nothing" >> beam.Create([], reshuffle=False) | "NoItems" >> beam.combiners.ToList()  # a default
         | "SaveNone" >> beam.Map(lambda items: (tmp_path / "none.json").write_text(json.dumps(items))))
    assert json.loads((tmp_path / "others.json").read_text()) == [i for i in range(12) if i % 3]
    assert json.loads((tmp_path / "threes.json").read_text()) == [0, 3, 6, 9]
    assert json.loads((tmp_path / "none.json").read_text()) == []
    ran_in = {int((tmp_path / f"element-{i}").read_text()) for i in range(12)}
    assert ran_in == worker_pids(client)  # all twelve ran in the workers, spread over both
    setups = {p.name: p.read_text() for p in tmp_path.glob("setup-*")}
    assert setups == {f"setup-{pid}": "x" for pid in ran_in}  # once per worker, not once per element


def test_retranscription_on_dask_equals_the_local_run(client, on_dask, rendered, checkpoints, tmp_path):
    from batch import retranscribe

    tiny_transcriber = checkpoints / "transcriber.keras"  # the session's, built once for every module
    local = retranscribe.run(str(rendered), str(tmp_path / "local"), str(tiny_transcriber), beam_args=LOCAL)
    with distributed.get_task_stream(client) as stream:
        dask = retranscribe.run(str(rendered), str(tmp_path / "dask"), str(tiny_transcriber), beam_args=on_dask)
    assert dask["transcribed"] == local["transcribed"] == 4 and dask["failed_count"] == 0
    assert files(tmp_path / "dask") == files(tmp_path / "local")  # MIDI, metrics and summary, byte for byte
    assert len({task["worker"] for task in stream.data}) == 2


def test_preprocessing_on_dask_equals_the_local_run(client, on_dask, rendered, preprocessed, tmp_path):
    from maestro import preprocess

    config = preprocess.PreprocessConfig(min_seconds=1.0, max_seconds=2.5)  # as the `preprocessed` fixture's
    summary = preprocess.run(str(rendered), str(tmp_path), config, beam_args=on_dask)
    assert summary["failed_count"] == 0
    shards = {name: data for name, data in files(tmp_path).items() if ".tfrecord-" in name}
    assert shards and shards == files(preprocessed)


def test_rendering_on_dask_equals_the_local_run(client, on_dask, midi_folder, rendered, tmp_path, capsys):
    from pipeline import main

    assert main(["maestro", "render", str(midi_folder), str(tmp_path), "--split-csv", str(midi_folder / "split.csv"),
                 *on_dask]) == 0
    assert "4 written" in capsys.readouterr().out
    local, dask = files(rendered), files(tmp_path)
    assert local.keys() == dask.keys()
    for name in local:
        if name.endswith(".wav"):
            np.testing.assert_allclose(soundfile.read(tmp_path / name)[0], soundfile.read(rendered / name)[0],
                                       atol=1e-6)
        else:
            assert dask[name] == local[name], name  # MIDI copies, metadata, renders.csv


class DiesOnceMidFile(NormalizeAudioStage):
    """Kills its worker process once, after writing a file's temporary output."""

    def __init__(self, marker: Path):
        super().__init__()
        self.marker = marker

    def process(self, job, temporaries):
        super().process(job, temporaries)
        if job.source.name == "piece1.flac" and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_file_loses_nothing(client, on_dask, recordings, tmp_path):
    from maestro.beam_stage import run_stage

    before = worker_pids(client)
    marker = tmp_path / "killed"
    report = run_stage(DiesOnceMidFile(marker), recordings, tmp_path / "dask", beam_args=on_dask)
    assert int(marker.read_text()) in before and int(marker.read_text()) not in worker_pids(client)
    assert report.ok and len(report.written) == 2
    NormalizeAudioStage().run(recordings, tmp_path / "local")
    local, dask = files(tmp_path / "local"), files(tmp_path / "dask")
    assert dask.keys() == local.keys()  # no temporary left behind by the killed worker
    for name in local:
        if name.endswith(".wav"):
            np.testing.assert_allclose(soundfile.read(tmp_path / "dask" / name)[0],
                                       soundfile.read(tmp_path / "local" / name)[0], atol=1e-6)


def test_the_full_flow_on_dask_equals_the_local_run(client, prefect_harness, checkpoints, recordings, tmp_path):
    from flows.full import wave2midi2wave

    kwargs = dict(input_dir=recordings, seconds=1.0, primer_seconds=1.0,
                  stages=["preprocess", "transcribe", "compose", "synthesize"],
                  transcriber=checkpoints / "transcriber.keras", composer=checkpoints / "composer.keras",
                  synthesizer=checkpoints / "synthesizer.keras", beam_args=LOCAL)
    local = wave2midi2wave(output_dir=tmp_path / "local", **kwargs)
    with distributed.get_task_stream(client) as stream:
        dask = wave2midi2wave(output_dir=tmp_path / "dask", dask_address=client.scheduler.address, **kwargs)
    for name in ("preprocess", "transcribe", "compose", "synthesize"):
        assert len(dask["stages"][name]["written"]) == 2 and not dask["stages"][name]["failed"]
        assert {Path(p).name for p in dask["stages"][name]["written"]} == \
            {Path(p).name for p in local["stages"][name]["written"]}
    local_files, dask_files = files(tmp_path / "local"), files(tmp_path / "dask")
    assert local_files.keys() == dask_files.keys()
    for name, data in local_files.items():
        if name.endswith(".wav"):
            np.testing.assert_allclose(soundfile.read(tmp_path / "dask" / name)[0],
                                       soundfile.read(tmp_path / "local" / name)[0], atol=1e-5)
        elif name.endswith(".midi"):
            assert dask_files[name] == data, name
    assert len(stream.data) == 8 and len({task["worker"] for task in stream.data}) == 2  # 4 stages x 2 files


def test_temporaries_of_another_machines_workers_are_left_alone(tmp_path):
    """Workers on several machines write into one shared folder: a process number of another
    machine says nothing here, so its temporary stays; this machine's dead ones go."""
    from stages.contract import partial_path, remove_stale_partials

    ours = partial_path(tmp_path / "a.wav")
    dead_here = ours.with_name(ours.name.replace(f"-{os.getpid()}-", "-999999999-"))
    elsewhere = ours.with_name(ours.name.replace(ours.name.split("-")[2], "0badf00d"))
    for path in (ours, dead_here, elsewhere):
        path.write_bytes(b"half")
    remove_stale_partials(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, elsewhere.name])


def test_a_flow_task_loads_its_model_once_per_process_while_the_checkpoint_is_unchanged(tmp_path):
    from flows.tasks import loaded

    class Model:
        def __init__(self, checkpoint, seed=0):
            self.checkpoint, self.seed = checkpoint, seed

    checkpoint = tmp_path / "model.keras"
    checkpoint.write_bytes(b"weights")
    first = loaded(Model, checkpoint, seed=1)
    assert loaded(Model, checkpoint, seed=1) is first  # the next file on this worker
    assert loaded(Model, checkpoint, seed=2) is not first
    checkpoint.write_bytes(b"new weights!")  # replaced under a long-lived worker or `w2m2w serve`
    assert loaded(Model, checkpoint, seed=1) is not first
