"""`w2m2w maestro subset`: the subsets that training renders are drawn from."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline import main


def subset(source: Path, out: Path, *args: str) -> list[dict]:
    assert main(["maestro", "subset", str(source), str(out), *args]) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_thirds_are_disjoint_cover_the_split_and_keep_validation_whole(tmp_path):
    source = tmp_path / "split.csv"
    rows = [("train", f"t{i}.mid") for i in range(10)] + [("validation", f"v{i}.mid") for i in range(4)]
    source.write_text("split,midi_performance\n" + "".join(f"{s},{p}\n" for s, p in rows), encoding="utf-8")
    thirds = [subset(source, tmp_path / f"third{k}.csv", "--every", "train=3", "validation=1",
                     *(["--first", f"train={k}"] if k != 3 else [])) for k in (1, 2, 3)]
    trains = [[Path(r["midi_performance"]).name for r in third if r["split"] == "train"] for third in thirds]
    assert trains == [["t0.mid", "t3.mid", "t6.mid", "t9.mid"], ["t1.mid", "t4.mid", "t7.mid"],
                      ["t2.mid", "t5.mid", "t8.mid"]]  # --first train=3 is the default, the 3rd, 6th, ...
    for third in thirds:  # validation is not shifted: every subset is tuned on the same pieces
        assert [Path(r["midi_performance"]).name for r in third if r["split"] == "validation"] == [
            f"v{i}.mid" for i in range(4)]
        assert all(Path(r["midi_performance"]).is_absolute() for r in third)


@pytest.mark.parametrize("args", [["--every", "train"], ["--every", "train=0"], ["--every", "train=3", "--first",
                                                                                 "train=4"]])
def test_bad_numbers_are_clear_errors(tmp_path, capsys, args):
    source = tmp_path / "split.csv"
    source.write_text("split,midi_performance\ntrain,a.mid\n", encoding="utf-8")
    assert main(["maestro", "subset", str(source), str(tmp_path / "out.csv"), *args]) == 2
    assert "train" in capsys.readouterr().err and not (tmp_path / "out.csv").exists()
