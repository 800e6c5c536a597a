#!/usr/bin/env bash
# The other transcribers that benchmarks/transcribe_robustness.py scores beside ours, each in a
# virtualenv of its own under runs/ (never a dependency of this package, so their pins never meet
# ours). Safe to run again: a peer already installed is skipped.
#
#   bash benchmarks/setup_peers.sh
#   .venv/bin/python -m benchmarks.transcribe_robustness \
#       --basic-pitch runs/basic-pitch-venv/bin/basic-pitch --transkun runs/transkun-venv/bin/transkun
#
# - basic-pitch 0.4 (Spotify, ICASSP 2022): without its TensorFlow pin (--no-deps), on the ONNX
#   runtime with what its inference imports (as benchmarks/synthesize_quality.py installs it);
# - transkun 2.0.1 (Yan & Duan, ISMIR 2024): ships its MAESTRO-trained checkpoint, runs on torch.
#   torch is pinned first, to the CPU build (2.13.0): asked for unpinned, pip picks a CUDA build of
#   several GB. No torchaudio is built for torch 2.13, and the newest (2.11) fails to load its compiled
#   extension at import; transkun calls only torchaudio's mel filter bank, plain Python, so the
#   extension's files are removed (torchaudio then imports without it). transkun's command imports
#   pkg_resources, which setuptools 81 dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3

venv() {  # venv FOLDER: create it once, with a current pip
  [ -x "$1/bin/python" ] || { "$python" -m venv "$1" && "$1/bin/python" -m pip install -q --upgrade pip; }
}

bp=runs/basic-pitch-venv
if [ ! -x "$bp/bin/basic-pitch" ] || ! "$bp/bin/python" -c "import basic_pitch, onnxruntime" 2>/dev/null; then
  echo "setup_peers: basic-pitch 0.4 into $bp"
  venv "$bp"
  "$bp/bin/python" -m pip install -q "basic-pitch==0.4.*" --no-deps
  "$bp/bin/python" -m pip install -q onnxruntime librosa pretty_midi mir_eval "resampy<0.4.3" scipy \
    typing-extensions soundfile
fi

tk=runs/transkun-venv
if [ ! -x "$tk/bin/transkun" ] || ! "$tk/bin/python" -c "import transkun.Util, torchaudio, pkg_resources" 2>/dev/null; then
  echo "setup_peers: transkun 2.0.1 into $tk"
  venv "$tk"
  "$tk/bin/python" -m pip install -q "torch==2.13.0"
  "$tk/bin/python" -m pip install -q "transkun==2.0.1" "setuptools<81"
  if ! "$tk/bin/python" -c "import torchaudio" 2>/dev/null; then
    rm -f "$("$tk/bin/python" -c "import importlib.util as u; print(u.find_spec('torchaudio').submodule_search_locations[0])")"/lib/*.so
  fi
  "$tk/bin/python" -c "import torchaudio, transkun.Util"  # fails here, not mid-benchmark
fi
echo "setup_peers: $bp/bin/basic-pitch, $tk/bin/transkun"
