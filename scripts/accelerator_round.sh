#!/bin/bash
# One round of composer training on a lent accelerator machine (see the README, "Training the
# composer on an accelerator"): there, neither TensorFlow nor note-seq is installed, so the run
# trains from token files under JAX with Keras carried as wheels.
#
#   bash scripts/accelerator_round.sh prepare
#       here: Keras's wheels into .whl/ and the ASAP train/validation token files into .gpu/
#       (both git-ignored; carry them: [".gpu", ".whl"]).
#   MINUTES=7 bash scripts/accelerator_round.sh train "--from compose/checkpoints/default.keras --widen --seed 1" ...
#       there: one scripts/train_composer_tokens.py run per quoted argument list, side by side on
#       the one GPU, each into $OUT/armN (final.keras, mean.keras, history.csv, log). Seven
#       minutes, with start-up and the validation scores, fit one 600-second call of the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local asap=${ASAP:-../shared/data/asap}
    mkdir -p .whl .gpu
    for exclude in /.whl/ /.gpu/; do
        grep -qx "$exclude" .git/info/exclude 2>/dev/null || echo "$exclude" >> .git/info/exclude
    done
    local platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $platforms \
        -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
    [ -e .gpu/asap-train.npz.xz ] || .venv/bin/python scripts/encode_corpus.py "$asap" .gpu/asap-train.npz.xz \
        --split-csv "$asap/asap_split.csv"
    [ -e .gpu/asap-validation.npz.xz ] || .venv/bin/python scripts/encode_corpus.py "$asap" .gpu/asap-validation.npz.xz \
        --split-csv "$asap/asap_split.csv" --split validation --stretches 1.0
    du -sh .whl .gpu
}

train() {
    : "${OUT:?set by the device machine}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
    # The arms share the GPU's memory evenly (JAX would otherwise take 75% for the first).
    export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(0.9 / $#, 2))")
    nvidia-smi -L
    local minutes=${MINUTES:-7} arm=0
    for arguments in "$@"; do
        arm=$((arm + 1))
        mkdir -p "$OUT/arm$arm"
        echo "arm$arm: $arguments" | tee "$OUT/arm$arm/log"
        # shellcheck disable=SC2086  # each arm's arguments split into words on purpose
        timeout $(( ${minutes%.*} * 60 + 150 )) python3 scripts/train_composer_tokens.py .gpu/asap-train.npz.xz \
            "$OUT/arm$arm" --validation .gpu/asap-validation.npz.xz --minutes "$minutes" --batch-size 64 \
            $arguments >> "$OUT/arm$arm/log" 2>&1 &
    done
    sleep 90 && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv || true
    wait || true
    for log in "$OUT"/arm*/log; do echo "== $log"; tail -n 6 "$log"; done
}

case "${1:-}" in
    prepare) prepare ;;
    train) shift; train "$@" ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
