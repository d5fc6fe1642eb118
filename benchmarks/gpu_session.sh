#!/usr/bin/env bash
# Everything a lent GPU can show, in one run of at most 8.5 minutes on an H100/H200 host:
#   preflight       imports, CUDA, the photos, free disk (seconds; on failure the session stops, one line)
#   machine         nvidia-smi, lscpu, /dev/shm, arniqa's machine description
#   cuda_tests      every test marked `cuda` (pytest -m cuda)
#   photos          KADIS-like 512x384 PNGs made from PHOTOS for the speed stages (smoke: 224x224)
#   pipeline        the degrade_on=workers DataLoader alone (benchmarks/training.py --pipeline-only)
#   step_*          the training step against the encoder alone: degrade_on=device at batch 16, workers at
#                   batch 16, 64 and 256 (SE-ResNet50, bf16, channels_last)
#   scoring         arniqa score's paths on the GPU (fp32, bf16; batch 1, 8, 32; decode workers; nvJPEG
#                   decode) against the encoder alone and a one-image-at-a-time loop (benchmarks/inference.py)
#   jpeg_codecs     the JPEG distortion through nvJPEG against PIL (benchmarks/jpeg_codecs.py)
#   curve           SE-ResNet50 from random init at 224 px, the batch the step stages found fastest per
#                   sample, about 4 minutes of training, probed at step 0, half-way and at the end
#                   (arniqa ablate configs/gpu_curve.yaml)
#   parts           the curve's model in bf16 safetensors parts of at most 15 MiB; arniqa evaluate and
#                   arniqa score load them
#   se_vs_resnet50  300 steps of each (configs/gpu_se_vs_resnet50.yaml), only when time is left
# Every stage has its own time limit; a failed or timed-out stage is recorded in stages.tsv and the next
# one runs. summary.md (benchmarks/gpu_summary.py) puts every figure in one table. Exit status: 2 when
# the preflight fails, 1 when any other stage failed, else 0.
#
#   benchmarks/gpu_session.sh PHOTOS [--weights RESNET50.pth] [--smoke] [--out DIR] [--archive FILE.tgz]
#                                    [--budget SECONDS] [--skip STAGE,STAGE...]
#
# PHOTOS: a folder of pristine photos (e.g. ../shared/data/pristine/bsds500 and kodak24 copied into an
# ignored folder and carried to the GPU machine: 52 MB). --out: the results folder (default
# benchmarks/results/gpu-session). --archive: everything the session wrote (logs, JSON, summary, plots)
# in one .tgz (files over 2 MiB are left out and listed in left-out.txt), and the model's parts beside it.
# --budget: the session's seconds (default 505; a stage's limit is cut to what is left). --skip: stages
# recorded as skipped, e.g. those an earlier session measured. --weights: a ResNet50 ImageNet file; the SE-vs-ResNet50
# comparison then starts from it with the reference recipe. --smoke: tiny settings on the CPU, the
# rehearsal CI runs (tests/test_gpu_session.py). The interpreter is ${PYTHON:-python3}; nothing here
# needs `python`, pillow-heif, pywuffs, kornia, openpyxl or ray.
set -uo pipefail

usage() { echo "usage: $0 PHOTOS [--weights FILE] [--smoke] [--out DIR] [--archive FILE.tgz] [--budget S] [--skip LIST]" >&2; exit 2; }
[ $# -ge 1 ] || usage
PHOTOS=$1; shift
SMOKE=0; WEIGHTS=""; ROOT=$(cd "$(dirname "$0")/.." && pwd); RESULTS=""; ARCHIVE=""; BUDGET_SET=""; SKIP=""
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) SMOKE=1 ;;
    --weights) WEIGHTS=$(realpath "${2:?--weights needs a file}"); shift ;;
    --out) RESULTS=${2:?--out needs a folder}; shift ;;
    --archive) ARCHIVE=${2:?--archive needs a file name}; shift ;;
    --budget) BUDGET_SET=${2:?--budget needs seconds}; shift ;;
    --skip) SKIP=,${2:?--skip needs stage names},; shift ;;
    *) usage ;;
  esac
  shift
done
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" > /dev/null || { echo "$0: no interpreter '$PYTHON'; set PYTHON" >&2; exit 2; }
[ -d "$PHOTOS" ] || { echo "$0: photo folder $PHOTOS does not exist" >&2; exit 2; }
PHOTOS=$(realpath "$PHOTOS")
RESULTS=$(realpath -m "${RESULTS:-$ROOT/benchmarks/results/gpu-session}")
[ -z "$ARCHIVE" ] || ARCHIVE=$(realpath -m "$ARCHIVE")
PARTS=$(dirname "${ARCHIVE:-$RESULTS/model/x}")  # the model's parts: beside the archive, else in model/
cd "$ROOT"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
rm -rf "$RESULTS"
mkdir -p "$RESULTS" "$PARTS"
printf 'stage\tstatus\tseconds\tlimit\n' > "$RESULTS/stages.tsv"
ARNIQA=("$PYTHON" -m arniqa)

if [ $SMOKE = 1 ]; then
  BUDGET=1500; DEVICE=cpu; CROP=32; BACKBONE=resnet50; PRECISION=fp32; PHOTO_COUNT=12; MIN_PHOTOS=8; FREE_GB=0.2
  PHOTO_SIZE=224,224  # the smallest jpeg_codecs' 224 px crops take; parts scores them whole
  # one torch thread per process: two on 2 cores beside a DataLoader worker or a busy CI machine spin-wait
  # (the step and scoring stages took 2-3x as long)
  export OMP_NUM_THREADS=1
  PIPE_WORKERS=1; DEVICE_BATCH=2; WORKER_BATCHES=2; STEPS=1; WARMUP=0; DEVICE_WARMUP=0; BENCH_WORKERS=1
  DEVICE_WORKERS=1; PROFILE=4; CURVE_SECONDS=0
  SCORING=(--images 1 --repeats 1 --threads 1 --sizes 48x40 --paths fp32@b1,loop,encoder-fp32@b1,nvjpeg-fp32@b1
           --no-baseline)
  CODECS=(--crops 8 --repeats 1)
  TINY=(--set data.holdout_images=6 --set synthetic.size=40x32 --set "synthetic.types=[gaublur, whitenoise]"
        --set recipe.data.crop_size=16 --set recipe.data.num_workers=0 --set recipe.train.batch_size=2
        --set recipe.train.device=cpu --set recipe.train.precision=fp32 --set evaluation.crop_size=16
        --set evaluation.splits=3 --set evaluation.device=cpu --set evaluation.num_workers=0
        --set evaluation.batch_size=32 --set threads=1)
  CURVE=("${TINY[@]}" --set recipe.data.degrade_on=device --set recipe.train.channels_last=false)
  ABLATE=("${TINY[@]}" --set recipe.train.max_steps=1)
  EVAL=(--crop-size 16 --device cpu --batch-size 32)
  SCORE_PROTOCOL=whole  # tiny photos: the crops protocol's ten 224 px crops are what costs on a CPU
  # stage limits (seconds)
  L_PRE=120; L_MACHINE=60; L_TESTS=180; L_PHOTOS=60; L_PIPE=120; L_STEP=180; L_STEP_BIG=180; L_SCORING=300
  L_CODECS=120; L_PARTS=300; RESERVE=10  # generous: a busy 2-core CI machine
else
  BUDGET=505; DEVICE=cuda; CROP=224; BACKBONE=se_resnet50; PRECISION=bf16; PHOTO_COUNT=64; MIN_PHOTOS=64; FREE_GB=8
  PHOTO_SIZE=512,384
  PIPE_WORKERS=15; DEVICE_BATCH=16; WORKER_BATCHES="16 64 256"; STEPS=12; WARMUP=8; DEVICE_WARMUP=4
  BENCH_WORKERS=15; DEVICE_WORKERS=8; PROFILE=16; CURVE_SECONDS=240
  SCORING=(--images 24 --repeats 2 --threads 16
           --paths fp32@b8@w8,fp32@b1@w8,fp32@b32@w8,bf16@b1@w8,bf16@b8@w8,bf16@b32@w8,loop,encoder-fp32@b32,encoder-bf16@b32,nvjpeg-fp32@b8)
  CODECS=(--crops 1024 --repeats 3)
  CURVE=(); ABLATE=(); EVAL=(--device cuda --batch-size 32 --workers 8); SCORE_PROTOCOL=crops
  # measured on an H200 host with slow cores (docs/results/gpu-session-h200): 64 photos 18 s, pipeline 20 s,
  # a step stage at batch 16 26-28 s, scoring 45 s, the codecs 8 s per JPEG level
  L_PRE=45; L_MACHINE=15; L_TESTS=75; L_PHOTOS=30; L_PIPE=35; L_STEP=35; L_STEP_BIG=120; L_SCORING=90; L_CODECS=60
  L_PARTS=60; RESERVE=8
fi

BUDGET=${BUDGET_SET:-$BUDGET}

# stage NAME LIMIT COMMAND...: COMMAND's output in NAME.log, within LIMIT and the time left.
FAILED=0
stage() {
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - RESERVE - SECONDS)) start=$SECONDS status
  [ "$limit" -gt "$left" ] && limit=$left
  if [[ $SKIP == *",$name,"* ]]; then
    status="skipped (--skip)"
  elif [ "$limit" -lt 5 ]; then
    status="skipped (no time left)"
  else
    echo "== $name (at most ${limit}s, ${SECONDS}s in)"
    timeout --kill-after=5 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
    case $? in 0) status=ok ;; 124|137) status="timed out" ;; *) status=failed ;; esac
    tail -n 3 "$RESULTS/$name.log"
  fi
  [ "$status" = ok ] || [ "$status" = "skipped (--skip)" ] || FAILED=1
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" $((SECONDS - start)) "$limit" >> "$RESULTS/stages.tsv"
  [ "$status" = ok ]
}

finish() {  # summary.md, the archive, the exit status
  "$PYTHON" benchmarks/gpu_summary.py "$RESULTS" > "$RESULTS/summary.md" 2> "$RESULTS/summary.log" \
    || echo "summary failed: $(tail -n 1 "$RESULTS/summary.log")"
  if [ -n "$ARCHIVE" ]; then  # files over 2 MiB stay out (a GPU machine returns files of at most 16 MiB)
    (cd "$RESULTS" && find . -type f -size +2M -not -path './model/*' > left-out.txt)
    tar czf "$ARCHIVE" -C "$RESULTS" --exclude=./model --exclude-from="$RESULTS/left-out.txt" . \
      && echo "archive: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)); left out: $(wc -l < "$RESULTS/left-out.txt") files"
  fi
  echo "== stages (${SECONDS}s)"; column -t -s $'\t' "$RESULTS/stages.tsv" 2>/dev/null || cat "$RESULTS/stages.tsv"
  exit "$1"
}

# links N: a folder of N links cycling over the KADIS-like photos (the benchmarks need batch x steps images).
links() {
  local folder=$SCRATCH/links-$1
  mkdir -p "$folder"
  local files=("$SCRATCH"/photos/*.png) i
  for ((i = 0; i < $1; i++)); do ln -sf "${files[i % ${#files[@]}]}" "$folder/$(printf 'img%05d.png' "$i")"; done
  echo "$folder"
}

if ! stage preflight "$L_PRE" "$PYTHON" benchmarks/preflight.py "$PHOTOS" --device "$DEVICE" --min-photos "$MIN_PHOTOS" \
    --min-free-gb "$FREE_GB" --disk "$RESULTS" --disk "$SCRATCH"; then
  echo "$0: $(grep -h 'preflight failed' "$RESULTS/preflight.log" || tail -n 1 "$RESULTS/preflight.log")" >&2
  FAILED=2; finish 2
fi
stage machine "$L_MACHINE" bash -c 'nvidia-smi || echo "no nvidia-smi"; lscpu; df -h /dev/shm
  "$0" -c "import json; from arniqa.utils.runtime import describe; print(json.dumps(describe(), indent=1))"' "$PYTHON"
mapfile -t CUDA_TESTS < <(grep -rl "mark.cuda\|CUDA_ONLY" tests --include='test_*.py' | sort)
stage cuda_tests "$L_TESTS" "$PYTHON" -m pytest -m cuda "${CUDA_TESTS[@]}" -q -rs -p no:cacheprovider \
  --junitxml="$RESULTS/cuda_tests.xml"
mkdir -p "$SCRATCH/photos"
stage photos "$L_PHOTOS" "$PYTHON" -c "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; from training import make_photos; make_photos(Path('$PHOTOS'), Path('$SCRATCH/photos'), $PHOTO_COUNT, ($PHOTO_SIZE))"

BENCH=("$PYTHON" benchmarks/training.py --crop-size "$CROP" --backbone "$BACKBONE")
stage pipeline "$L_PIPE" "${BENCH[@]}" --pipeline-only --workers "$PIPE_WORKERS" --batch "$DEVICE_BATCH" --steps $((3 * STEPS)) \
  --warmup "$PIPE_WORKERS" --profile-samples "$PROFILE" --out "$RESULTS/pipeline.json" \
  --images "$(links $((DEVICE_BATCH * (3 * STEPS + PIPE_WORKERS + 1))))"
stage "step_device_b$DEVICE_BATCH" "$L_STEP" "${BENCH[@]}" --device "$DEVICE" --precision "$PRECISION" --degrade-on device \
  --workers "$DEVICE_WORKERS" --batch "$DEVICE_BATCH" --steps "$STEPS" --warmup "$DEVICE_WARMUP" --out "$RESULTS/step-device-b$DEVICE_BATCH.json" \
  --images "$(links $((DEVICE_BATCH * (STEPS + DEVICE_WARMUP + 1))))"
for B in $WORKER_BATCHES; do
  N=$((B > 64 ? (STEPS + 1) / 2 : STEPS))  # batch 256: half the steps, each is 16x batch 16's
  stage "step_workers_b$B" $((B > 16 ? B > 64 ? L_STEP_BIG : 2 * L_STEP : L_STEP)) "${BENCH[@]}" --device "$DEVICE" --precision "$PRECISION" \
    --degrade-on workers --workers "$BENCH_WORKERS" --batch "$B" --steps "$N" --warmup "$WARMUP" \
    --out "$RESULTS/step-workers-b$B.json" --images "$(links $((B * (N + WARMUP + 1))))"
done
stage scoring "$L_SCORING" "$PYTHON" benchmarks/inference.py --device "$DEVICE" --protocols whole,pyiqa,crops \
  --out "$RESULTS/scoring.json" "${SCORING[@]}"
stage jpeg_codecs "$L_CODECS" "$PYTHON" benchmarks/jpeg_codecs.py --photos "$SCRATCH/photos" --device "$DEVICE" \
  --out "$RESULTS/jpeg_codecs.json" "${CODECS[@]}"

# The curve: batch and degrade_on of the fastest step per sample; steps for CURVE_SECONDS of training, or
# what the time left allows after the probes and the parts (smoke: 2 steps).
LEFT=$((BUDGET - RESERVE - SECONDS - L_PARTS))
read -r CURVE_BATCH CURVE_MODE CURVE_STEPS < <("$PYTHON" benchmarks/gpu_summary.py "$RESULTS" --curve-plan \
  --seconds "$CURVE_SECONDS" --left "$LEFT" --smoke "$SMOKE" --photos "$PHOTOS")
echo "curve plan: batch $CURVE_BATCH, degrade_on $CURVE_MODE, $CURVE_STEPS steps"
WARM=$((CURVE_STEPS / 12 > 0 ? CURVE_STEPS / 12 : 0))
stage curve "$LEFT" "${ARNIQA[@]}" ablate configs/gpu_curve.yaml -o "$SCRATCH/curve" --set data.pristine="$PHOTOS" \
  --set recipe.train.batch_size="$CURVE_BATCH" --set recipe.data.degrade_on="$CURVE_MODE" \
  --set recipe.train.max_steps="$CURVE_STEPS" --set recipe.optim.warmup_steps="$WARM" \
  --set recipe.optim.t0_steps=$((CURVE_STEPS - WARM)) --set "evaluation.probe_steps=[$((CURVE_STEPS / 2))]" "${CURVE[@]}"
mkdir -p "$RESULTS/curve"
(cd "$SCRATCH/curve" 2>/dev/null && find . -path ./benchmarks -prune -o -path ./data -prune -o \( -name '*.json' -o -name '*.md' \
  -o -name '*.png' -o -name '*.csv' -o -name '*.log' \) -size -2M -print0 | xargs -0r cp --parents -t "$RESULTS/curve")

# The parts: the trained encoder in bf16 parts; evaluate fits a ridge on the curve's benchmark through them;
# the encoder with that regressor goes into parts again, which score a few photos.
MODEL="$SCRATCH/curve/se_resnet50/seed0/train/model.safetensors"
SYNTHETIC="$SCRATCH/curve/benchmarks/synthetic"
CONVERT='import sys, torch
from arniqa.models.checkpoint import extra_config, load_checkpoint, save_checkpoint
model, regressor, config = load_checkpoint(sys.argv[1])
for p in save_checkpoint(sys.argv[2], model, regressor, dtype=torch.bfloat16, max_part_bytes=15 << 20, **extra_config(config)):
    print(p)'
stage parts "$L_PARTS" bash -c 'set -e
  "$0" -c "$1" "$2" "$3/encoder/se_resnet50.safetensors"
  "$0" -m arniqa evaluate --dataset kadid10k --root "$4" --checkpoint "$3/encoder" -o "$3/evaluate" --splits 3 "${@:7}"
  "$0" -c "$1" "$3/evaluate/checkpoint_kadid10k.safetensors" "$5/se_resnet50-gpu.safetensors"
  "$0" -m arniqa score --checkpoint "$5/se_resnet50-gpu-00001-of-"*.safetensors "$6" -o "$3/scores.csv" --device '"$DEVICE"' --engine torch \
    --protocol '"$SCORE_PROTOCOL"'
  cp "$3/scores.csv" "$3/evaluate/results.json" '"$RESULTS"'/' \
  "$PYTHON" "$CONVERT" "$MODEL" "$SCRATCH/parts" "$SYNTHETIC" "$PARTS" "$SCRATCH/photos" "${EVAL[@]}"

if [ $((BUDGET - RESERVE - SECONDS)) -ge 150 ] || [ $SMOKE = 1 ]; then
  if [ -n "$WEIGHTS" ]; then
    V="{backbone: resnet50, init: imagenet, weights: '$WEIGHTS'}"
    S="backbone: se_resnet50, init: imagenet, weights: '$WEIGHTS'"
    ABLATE+=(--set "variants={resnet50_imagenet: $V, se_resnet50_identity: {$S, se_init: identity}, se_resnet50_random: {$S, se_init: random}}"
             --set baseline=resnet50_imagenet --set recipe.model.init=imagenet --set recipe.optim.name=sgd
             --set recipe.optim.lr=0.001 --set recipe.optim.weight_decay=0.0001 --set recipe.optim.warmup_steps=0
             --set recipe.optim.t0_steps=null)  # the reference recipe, made for ImageNet starts
  fi
  stage se_vs_resnet50 $((BUDGET - RESERVE - SECONDS)) "${ARNIQA[@]}" ablate configs/gpu_se_vs_resnet50.yaml \
    -o "$SCRATCH/se_vs_resnet50" --set data.pristine="$PHOTOS" "${ABLATE[@]}"
  mkdir -p "$RESULTS/se_vs_resnet50"
  for f in report.md summary.json study.json data/split.json "$SCRATCH"/se_vs_resnet50/*.png; do
    [ -f "$SCRATCH/se_vs_resnet50/$f" ] && cp "$SCRATCH/se_vs_resnet50/$f" "$RESULTS/se_vs_resnet50/"
    [ -f "$f" ] && cp "$f" "$RESULTS/se_vs_resnet50/"
  done
else
  printf 'se_vs_resnet50\tskipped (no time left)\t0\t0\n' >> "$RESULTS/stages.tsv"
fi
finish $FAILED
