#!/bin/bash
# One round of composer training on a lent accelerator machine (docs/compose-training.md). There
# neither TensorFlow nor note-seq is installed, so `w2m2w train compose` (run as
# `python3 pipeline.py`, the package not installed) trains from token files under JAX, with Keras
# carried as wheels.
#
#   bash scripts/accelerator_round.sh prepare
#       here: Keras's wheels into .whl/ and the ASAP train/validation/test token files into .gpu/
#       (both git-ignored; carry them: [".gpu", ".whl"]).
#   MINUTES=7 bash scripts/accelerator_round.sh train "--config paper --mixed-precision" "--from compose/checkpoints/default.keras --widen" ...
#       there: one `w2m2w train compose` run per quoted argument list, side by side on the one GPU,
#       each in /tmp/runs/armN; back in $OUT/armN: its log, history.csv, and its best model in
#       float16, cut into 15 MiB parts (join them here with `cat best-float16.keras.part-* > X.keras`).
#   bash scripts/accelerator_round.sh score CHECKPOINT [CHUNK_LENGTH]
#       there: the raw NLL per event of CHECKPOINT on the test split's token file, with its
#       bootstrap interval (`w2m2w evaluate compose ... --raw-only`).
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
    for split in train validation test; do
        [ -e ".gpu/asap-$split.npz.xz" ] || .venv/bin/w2m2w compose-tools encode "$asap" ".gpu/asap-$split.npz.xz" \
            --split-csv "$asap/asap_split.csv" --split "$split" --workers 2
    done
    du -sh .whl .gpu
}

setup_there() {
    : "${OUT:?set by the device machine}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
}

train() {
    setup_there
    # The arms share the GPU's memory evenly (JAX would otherwise take 75% for the first).
    export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(0.9 / $#, 2))")
    nvidia-smi -L
    local minutes=${MINUTES:-7} arm=0
    for arguments in "$@"; do
        arm=$((arm + 1))
        mkdir -p "$OUT/arm$arm" "/tmp/runs/arm$arm"
        echo "arm$arm: $arguments" | tee "$OUT/arm$arm/log"
        # shellcheck disable=SC2086  # each arm's arguments split into words on purpose
        timeout $(( ${minutes%.*} * 60 + 240 )) python3 pipeline.py train compose .gpu/asap-train.npz.xz \
            "/tmp/runs/arm$arm" --validation .gpu/asap-validation.npz.xz --minutes "$minutes" --batch-size 64 \
            --steps-per-epoch 100 --float16 $arguments >> "$OUT/arm$arm/log" 2>&1 &
    done
    sleep 90 && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv || true
    wait || true
    for run in /tmp/runs/arm*; do
        local name
        name=$(basename "$run")
        cp "$run/history.csv" "$OUT/$name/" 2>/dev/null || true
        [ -e "$run/best-float16.keras" ] && split -b 15M "$run/best-float16.keras" "$OUT/$name/best-float16.keras.part-"
        echo "== $name"; tail -n 6 "$OUT/$name/log"
    done
}

score() {
    setup_there
    python3 pipeline.py evaluate compose .gpu/asap-test.npz.xz --checkpoint "$1" --chunk-length "${2:-2048}" \
        --raw-only --batch-size 32 | tee "$OUT/score.json"
}

case "${1:-}" in
    prepare) prepare ;;
    train) shift; train "$@" ;;
    score) shift; score "$@" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
esac
