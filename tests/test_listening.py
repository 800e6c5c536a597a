"""The listening page: a player per renderer per excerpt, every file it names present, written whole."""

from __future__ import annotations

import re

import numpy as np
import soundfile

from synthesize.listening import write_listening_page

RATE = 16_000


def test_the_page_has_one_player_per_renderer_per_excerpt_and_every_file_it_names(tmp_path):
    rng = np.random.default_rng(0)
    renders = {name: [0.1 * rng.standard_normal(RATE // 2).astype(np.float32) for _ in range(3)]
               for name in ("salamander (reference)", "wavenet", "fluidsynth <TimGM6mb>")}
    figures = {"wavenet": {"log_mel_distance": 0.6, "classifier_accuracy": 0.7}}
    index = write_listening_page(tmp_path / "page", ["a", "b", "c"], renders, RATE, figures)
    page = index.read_text(encoding="utf-8")
    sources = re.findall(r'<audio[^>]* src="([^"]+)"', page)
    assert len(sources) == 3 * 3 and len(set(sources)) == 9
    for source in sources + re.findall(r'<img src="([^"]+)"', page):
        assert (index.parent / source).is_file(), source
    played, rate = soundfile.read(index.parent / sources[1])  # the second renderer of the first excerpt
    assert rate == RATE and np.allclose(played, renders["wavenet"][0], atol=1e-4)
    assert "&lt;TimGM6mb&gt;" in page and "<TimGM6mb>" not in page  # names are escaped
    assert "0.700" in page  # the figures table


def test_a_new_page_replaces_the_old_one_and_leaves_no_temporaries(tmp_path):
    audio = {"reference": [np.zeros(RATE // 4, np.float32)], "wavenet": [np.zeros(RATE // 4, np.float32)]}
    write_listening_page(tmp_path / "page", ["old excerpt"], audio, RATE)
    write_listening_page(tmp_path / "page", ["new excerpt"], audio, RATE)
    assert "new excerpt" in (tmp_path / "page" / "index.html").read_text() and \
        "old excerpt" not in (tmp_path / "page" / "index.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["page"]
