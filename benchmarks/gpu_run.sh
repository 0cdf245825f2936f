#!/usr/bin/env bash
# The GPU measurements of issue 12 in one script; every result lands in OUTDIR as JSON.
#
#   benchmarks/gpu_run.sh OUTDIR
#
# Stages (STAGES, in this order; one device command may run at most 10 minutes, so a session
# can run them one at a time, e.g. STAGES=bench, then STAGES=train):
#   data      unpack the CIFAR-10 JPEG copy into $DATA_DIR (skipped when already there)
#   bench     python -m allnc_edu bench --device $DEVICE --json OUTDIR/bench.json
#   train     CIFAR-10-LT (JPEG copy), IR 100, exp profile, ResNet-32 (16/32/64), the GLMC recipe
#             (batch 64, lr 0.01, weight decay 5e-3, 5 warm-up epochs, cosine), $EPOCHS epochs,
#             for each of $METHODS: OUTDIR/cifar10-lt-<method>/{run,history}.json (+ checkpoint.pt)
#             and OUTDIR/<method>.log; the runs resume from their checkpoints when re-run
#   notebook  notebooks/05 through papermill with its default parameters on the JPEG copy:
#             OUTDIR/05_long_tailed_benchmark.{ipynb,json}
# Every stage appends its command and wall time to OUTDIR/timings.tsv; OUTDIR/gpu_run.json
# gathers them with the card, torch and CUDA versions.
#
# Environment (defaults are the GPU run; the CPU dry run is at the end of this comment):
#   DEVICE=cuda  EPOCHS=200  METHODS="ce la etf-dr allnc"  N_MAX= (head class; default 5000)
#   CONCURRENT=1   all methods at once on the one card (0: one after another)
#   RUN_TIMEOUT=0  seconds allowed to each training run (0: no limit)
#   STAGES="data bench train notebook"   DATA_DIR=.data   PYTHON= (.venv/bin/python or python3)
#   TARBALL= (first found: ../shared/data, shared/data, $DATA_DIR / cifar10-jpeg.tar.gz; for a
#             machine without ../shared, copy the 19.6 MB tarball into the ignored .data/ and
#             carry .data/cifar10-jpeg.tar.gz with the checkout)
#   BENCH_ARGS= (extra bench arguments)   NOTEBOOK_ARGS= (extra papermill arguments)
#
# CPU dry run (minutes; tiny sizes, same code path):
#   DEVICE=cpu EPOCHS=1 N_MAX=100 BENCH_ARGS="--quick --ref-workers 0 --batch-size 16" \
#   NOTEBOOK_ARGS="-p SMOKE True -p DATASET mnist1d" DATA_DIR=/path/to/small/image-folder-copy \
#   benchmarks/gpu_run.sh /tmp/dry
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: benchmarks/gpu_run.sh OUTDIR   (settings: see the comment at the top)" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-200}
METHODS=${METHODS:-ce la etf-dr allnc}
N_MAX=${N_MAX:-}
CONCURRENT=${CONCURRENT:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-0}
STAGES=${STAGES:-data bench train notebook}
DATA_DIR=${DATA_DIR:-.data}
BENCH_ARGS=${BENCH_ARGS:-}
NOTEBOOK_ARGS=${NOTEBOOK_ARGS:-}
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$DATA_DIR"
DATA_DIR=$(cd "$DATA_DIR" && pwd)
CIFAR=$DATA_DIR/cifar10-jpeg

log() { echo "[gpu_run $(date -u +%H:%M:%S)] $*"; }
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }

# timed NAME CMD...: run CMD, append "NAME<TAB>seconds<TAB>exit status<TAB>command" to timings.tsv.
timed() {
    local name=$1 start status
    shift
    start=$EPOCHREALTIME
    status=0
    "$@" || status=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $start}")" \
        "$status" "$*" >>"$OUT/timings.tsv"
    return "$status"
}

unpack() {
    if [[ -d $CIFAR/train && -d $CIFAR/test ]]; then
        log "CIFAR-10 JPEG copy already in $CIFAR"
        return
    fi
    local tarball=${TARBALL:-}
    if [[ -z $tarball ]]; then
        for t in ../shared/data shared/data "$DATA_DIR"; do
            if [[ -f $t/cifar10-jpeg.tar.gz ]]; then tarball=$t/cifar10-jpeg.tar.gz; break; fi
        done
    fi
    if [[ -z $tarball ]]; then
        echo "gpu_run: no cifar10-jpeg.tar.gz found (set TARBALL=...)" >&2
        return 1
    fi
    log "unpacking $tarball into $DATA_DIR"
    tar -xzf "$tarball" -C "$DATA_DIR"
}

train_one() {
    local method=$1 n_max=() warmup=$((EPOCHS < 5 ? EPOCHS : 5))
    [[ -n $N_MAX ]] && n_max=(--n-max "$N_MAX")
    timed "train-$method" timeout "$RUN_TIMEOUT" "$PYTHON" -m allnc_edu train \
        --dataset cifar10-lt --data-root "$CIFAR" --imbalance-ratio 100 --profile exp \
        "${n_max[@]}" --backbone resnet32-ldam --method "$method" --epochs "$EPOCHS" \
        --batch-size 64 --lr 0.01 --weight-decay 5e-3 --warmup-epochs "$warmup" \
        --device "$DEVICE" --seed 0 --no-progress --out "$OUT/cifar10-lt-$method" --resume \
        >"$OUT/$method.log" 2>&1
}

summary() {
    "$PYTHON" - "$OUT" "$DEVICE" <<'EOF'
import csv, json, platform, sys
from pathlib import Path

import torch

out, device = Path(sys.argv[1]), sys.argv[2]
with open(out / "timings.tsv", newline="") as f:
    rows = [{"name": r[0], "wall_s": float(r[1]), "status": int(r[2]), "command": r[3]}
            for r in csv.reader(f, delimiter="\t")]
gpu = device.startswith("cuda") and torch.cuda.is_available()
card = torch.cuda.get_device_name(0) if gpu else f"no GPU ({platform.processor() or 'CPU'})"
info = {"device": device, "card": card, "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), "runs": rows}
(out / "gpu_run.json").write_text(json.dumps(info, indent=2) + "\n")
print(f"wrote {out / 'gpu_run.json'}")
EOF
}

status=0
log "OUTDIR=$OUT DEVICE=$DEVICE EPOCHS=$EPOCHS METHODS='$METHODS' STAGES='$STAGES'"
if has_stage data || has_stage train || has_stage notebook; then
    timed data unpack
fi
if has_stage bench; then
    # shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
    timed bench "$PYTHON" -m allnc_edu bench --device "$DEVICE" --json "$OUT/bench.json" \
        $BENCH_ARGS || status=1
fi
if has_stage train; then
    pids=()
    for method in $METHODS; do
        log "training $method ($EPOCHS epochs) -> $OUT/cifar10-lt-$method"
        if [[ $CONCURRENT == 1 ]]; then
            train_one "$method" &
            pids+=($!)
        else
            train_one "$method" || { status=1; tail -n 5 "$OUT/$method.log" >&2; }
        fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    for method in $METHODS; do tail -n 3 "$OUT/$method.log"; done
fi
if has_stage notebook; then
    # shellcheck disable=SC2086 # NOTEBOOK_ARGS is a list of arguments
    timed notebook "$PYTHON" -m papermill notebooks/05_long_tailed_benchmark.ipynb \
        "$OUT/05_long_tailed_benchmark.ipynb" --kernel python3 \
        -p DATASET cifar10-lt -p DATA_ROOT "$CIFAR" \
        -p RESULTS_PATH "$OUT/05_long_tailed_benchmark.json" $NOTEBOOK_ARGS || status=1
fi
summary
log "done (status $status); timings in $OUT/timings.tsv"
exit "$status"
