#!/usr/bin/env bash
# Train every shipped model on a lent GPU in at most about 9 minutes, and check the CUDA paths.
#
#   bash benchmarks/gpu/train_all.sh DATA OUT
#
# DATA holds photo/, monet/, vangogh/ and ukiyoe/ (benchmarks/gpu/prepare.sh packs a subset of
# ../shared/data that travels to the device machine); OUT receives one safetensors file per
# model (its card in the header), checks.txt and train.log. What it does:
#
# 1. CUDA checks, a few steps each: bf16 autocast with channels-last, fp16 with the grad scaler,
#    and two processes over NCCL when the machine has two GPUs (NCCL cannot put two ranks on
#    one GPU, so with one it says it skipped). Each prints ok or FAILED into checks.txt.
# 2. The shipped models' recipes at 256 px (styles) and 128 px (generate), bf16, channels-last,
#    all at once on the one GPU (none of these small networks fills an H200 alone), each for
#    ARTGAN_GPU_MINUTES (default 6): the three styles (trained against periodic artefacts,
#    --artefact-weight), the restore detector fine-tuned on photographs and paintings and
#    the generator (noise injection, --noise), each exporting the step its validation
#    picks. Widths
#    stay those of the shipped models: the CycleGAN paper's (64, 9 blocks) would make 45 MB
#    files, over the few MB a shipped model may take and the 16 MiB a file may come back as.
#
# Whether a result ships is decided afterwards on the CPU with the quality benchmarks
# (quality_style.py, quality_generate.py, calibrate_restore.py and quality_restore.py).
#
# ARTGAN_GPU_TINY=1 runs the same steps with tiny settings on the CPU (the test suite does).
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA OUT" >&2
    exit 2
fi
DATA=$1
OUT=$2
for folder in photo monet vangogh ukiyoe; do
    [ -d "$DATA/$folder" ] || { echo "$DATA/$folder: no such folder" >&2; exit 2; }
done
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CHECKS=$OUT/checks.txt
LOG=$OUT/train.log
: >"$CHECKS"
: >"$LOG"
PYTHON=${PYTHON:-python3}

if [ "${ARTGAN_GPU_TINY:-0}" = 1 ]; then
    DEVICE=cpu
    BUDGET=(--steps 2)
    STYLE=(--size 64 --load-size 68 --width 4 --blocks 1 --d-width 4 --d-layers 1)
    GENERATE=(--size 64 --width 2 --batch-size 2)
    RESTORE=(--load-size 128 --batch-size 2 --detector-steps 1)
    STYLE_PICK=(--holdout 0 --validate 2 --validate-every 1)
    RESTORE_PICK=(--holdout 0 --validate 2 --validate-every 1)
    GENERATE_PICK=(--validate 4 --validate-every 1)
    CHECK_STEPS=2
else
    DEVICE=cuda
    BUDGET=(--minutes "${ARTGAN_GPU_MINUTES:-6}")
    STYLE=(--size 256 --load-size 286 --width 32 --blocks 6)
    GENERATE=(--size 128 --width 16 --batch-size 32)
    RESTORE=(--load-size 256 --batch-size 16 --detector-steps 2)
    STYLE_PICK=(--holdout 0 --validate 15 --validate-every 500)
    RESTORE_PICK=(--holdout 0 --validate 5 --validate-every 500)
    GENERATE_PICK=(--validate 256 --validate-every 500)
    CHECK_STEPS=20
fi
COMMON=(--device "$DEVICE" --checkpoint-every 1000 --sample-every 100000 --seed 0)
[ "$DEVICE" = cuda ] && COMMON+=(--precision bf16 --channels-last)

echo "== machine" >>"$CHECKS"
"$PYTHON" - >>"$CHECKS" 2>&1 <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda,
      "devices", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
EOF

check() {  # check NAME COMMAND...: run a short job, record ok or FAILED with its last line
    local name=$1
    shift
    if "$@" >"$WORK/$name.log" 2>&1; then
        echo "ok      $name" >>"$CHECKS"
    else
        echo "FAILED  $name: $(tail -n 1 "$WORK/$name.log")" >>"$CHECKS"
    fi
    { echo "== check $name"; cat "$WORK/$name.log"; } >>"$LOG"
}

style_check=("$PYTHON" -m artgan train style-transfer --domain-a "$DATA/photo"
             --domain-b "$DATA/monet" "${STYLE[@]}" --steps "$CHECK_STEPS"
             --device "$DEVICE" --sample-every 100000)
echo "== CUDA paths" >>"$CHECKS"
if [ "$DEVICE" = cuda ]; then
    check bf16-channels-last "${style_check[@]}" --name check-bf16 --precision bf16 \
        --channels-last --out "$WORK/check-bf16.safetensors" --run-dir "$WORK/runs/check-bf16"
    check fp16-grad-scaler "$PYTHON" -m artgan train generate --data "$DATA/monet" \
        --name check-fp16 "${GENERATE[@]}" --steps "$CHECK_STEPS" --device cuda \
        --precision fp16 --out "$WORK/check-fp16.safetensors" --run-dir "$WORK/runs/check-fp16"
    gpus=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
    if [ "$gpus" -ge 2 ]; then
        check nccl-2-processes "$PYTHON" -m torch.distributed.run --nproc_per_node 2 \
            -m artgan train style-transfer --domain-a "$DATA/photo" --domain-b "$DATA/monet" \
            "${STYLE[@]}" --steps "$CHECK_STEPS" --device cuda --precision bf16 \
            --name check-nccl --out "$WORK/check-nccl.safetensors" \
            --run-dir "$WORK/runs/check-nccl"
    else
        echo "skipped nccl-2-processes: $gpus GPU (NCCL needs a GPU per process)" >>"$CHECKS"
    fi
else
    echo "skipped: no CUDA in this run" >>"$CHECKS"
fi

echo "== training (${BUDGET[*]} each, all at once)" >>"$CHECKS"
train() {  # train NAME TASK OPTIONS...: one model in the background, into $OUT/NAME.safetensors
    local name=$1 task=$2
    shift 2
    "$PYTHON" -m artgan train "$task" --name "$name" "$@" "${BUDGET[@]}" "${COMMON[@]}" \
        --out "$OUT/$name.safetensors" --run-dir "$WORK/runs/$name" >"$WORK/$name.log" 2>&1
}
pids=()
names=()
for style in monet vangogh ukiyoe; do
    train "$style" style-transfer --domain-a "$DATA/photo" --domain-b "$DATA/$style" \
        "${STYLE[@]}" --identity 2.5 --ema 0.998 --augment translation --artefact-weight 3 \
        "${STYLE_PICK[@]}" &
    pids+=($!)
    names+=("$style")
done
train generate-monet generate --data "$DATA/monet" "${GENERATE[@]}" --ema 0.998 --noise \
    "${GENERATE_PICK[@]}" &
pids+=($!)
names+=(generate-monet)
train restore-general restore --init general --only detector --data "$DATA/photo" \
    --data "$DATA/monet" --data "$DATA/vangogh" --data "$DATA/ukiyoe" "${RESTORE[@]}" \
    --detector-lr 2e-4 --lr-schedule linear "${RESTORE_PICK[@]}" &
pids+=($!)
names+=(restore-general)

status=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        echo "ok      ${names[$i]}: $(tail -n 1 "$WORK/${names[$i]}.log")" >>"$CHECKS"
    else
        echo "FAILED  ${names[$i]}: $(tail -n 1 "$WORK/${names[$i]}.log")" >>"$CHECKS"
        status=1
    fi
    { echo "== train ${names[$i]}"; cat "$WORK/${names[$i]}.log"; } >>"$LOG"
done
grep -q FAILED "$CHECKS" && status=1
cat "$CHECKS"
exit $status
