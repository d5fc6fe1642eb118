#!/usr/bin/env bash
# Everything a GPU session can show, in one run of at most 8 minutes (a lent GPU's budget):
#   1. the machine (nvidia-smi, lscpu, /dev/shm), 2. the CUDA tests (tests/degradations/test_cuda.py),
#   3. the degrade_on=workers DataLoader alone with 15 workers (benchmarks/training.py --pipeline-only),
#   4. the training step against the encoder alone: degrade_on=device at batch 16, degrade_on=workers at
#      batch 16, 64 and 256 (SE-ResNet50, bf16, channels_last),
#   5. SE-ResNet50 vs ResNet50 trained for the same steps at 224 px, probed on a synthetic KADID-style
#      benchmark at step 0 and at the end (arniqa ablate configs/gpu_se_vs_resnet50.yaml).
# Results: benchmarks/results/gpu-session/ (JSON, logs, summary.md, stages.tsv) and
# docs/results/gpu-se-vs-resnet50/ (the comparison's report). A stage that fails or runs out of time
# is recorded in stages.tsv and the next one runs; the exit status is 1 when any failed.
#
#   benchmarks/gpu_session.sh PHOTOS [--weights RESNET50.pth] [--smoke] [--out DIR]
#
# PHOTOS: a folder of pristine photos (e.g. ../shared/data/pristine/bsds500 and kodak24 carried to the GPU
# machine: 52 MB). --weights: a ResNet50 ImageNet file; the comparison then starts from it (ResNet50, and
# SE-ResNet50 with se_init identity and random) with the reference recipe instead of random init. --smoke: tiny settings on the CPU
# (about a minute on a busy 2-core CPU; tests/test_gpu_session.py). --out: write under DIR instead of the repository.
set -uo pipefail

usage() { echo "usage: $0 PHOTOS [--weights FILE] [--smoke] [--out DIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
PHOTOS=$1; shift
SMOKE=0; WEIGHTS=""; ROOT=$(cd "$(dirname "$0")/.." && pwd); OUT=$ROOT
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) SMOKE=1 ;;
    --weights) WEIGHTS=$(realpath "${2:?--weights needs a file}"); shift ;;
    --out) OUT=${2:?--out needs a folder}; shift ;;
    *) usage ;;
  esac
  shift
done
[ -d "$PHOTOS" ] || { echo "$0: photo folder $PHOTOS does not exist" >&2; exit 2; }
PHOTOS=$(realpath "$PHOTOS")
cd "$ROOT"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
RESULTS=$OUT/benchmarks/results/gpu-session
REPORT=$OUT/docs/results/gpu-se-vs-resnet50
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$RESULTS" "$REPORT"
printf 'stage\tstatus\tseconds\n' > "$RESULTS/stages.tsv"

if [ $SMOKE = 1 ]; then
  BUDGET=240; SCALE=3; DEVICE=cpu; CROP=32; BACKBONE=resnet50; PRECISION=fp32; PHOTO_COUNT=12; PIPE_WORKERS=1
  DEVICE_BATCH=2; WORKER_BATCHES=2; STEPS=1; WARMUP=0; DEVICE_WARMUP=0; BENCH_WORKERS=1; DEVICE_WORKERS=1; PROFILE=4
  ABLATE=(--set data.holdout_images=6 --set synthetic.size=40x32 --set "synthetic.types=[gaublur, whitenoise]"
          --set recipe.data.crop_size=16 --set recipe.data.num_workers=0 --set recipe.train.max_steps=1
          --set recipe.train.batch_size=2 --set recipe.train.device=cpu --set recipe.train.precision=fp32
          --set evaluation.crop_size=16 --set evaluation.splits=3 --set evaluation.device=cpu
          --set evaluation.num_workers=0 --set evaluation.batch_size=32 --set threads=1)
else
  BUDGET=470; SCALE=1; DEVICE=cuda; CROP=224; BACKBONE=se_resnet50; PRECISION=bf16; PHOTO_COUNT=256; PIPE_WORKERS=15
  DEVICE_BATCH=16; WORKER_BATCHES="16 64 256"; STEPS=20; WARMUP=15; DEVICE_WARMUP=5; BENCH_WORKERS=15; DEVICE_WORKERS=8; PROFILE=32
  ABLATE=()
fi
if [ -n "$WEIGHTS" ]; then
  V="{backbone: resnet50, init: imagenet, weights: '$WEIGHTS'}"
  S="backbone: se_resnet50, init: imagenet, weights: '$WEIGHTS'"
  ABLATE+=(--set "variants={resnet50_imagenet: $V, se_resnet50_identity: {$S, se_init: identity}, se_resnet50_random: {$S, se_init: random}}"
           --set baseline=resnet50_imagenet --set recipe.model.init=imagenet --set recipe.optim.name=sgd
           --set recipe.optim.lr=0.001 --set recipe.optim.weight_decay=0.0001 --set recipe.optim.warmup_steps=0
           --set recipe.optim.t0_steps=null)  # the reference recipe, made for ImageNet starts
fi

# stage NAME SECONDS COMMAND...: run COMMAND with its output in NAME.log, within SCALE x SECONDS and
# the time left (the smoke run's ResNet50 steps on a busy 2-core CPU take longer than a GPU's stages).
FAILED=0
stage() {
  local name=$1 limit=$(($2 * SCALE)); shift 2
  local left=$((BUDGET - SECONDS)) start=$SECONDS status
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    status="skipped (no time left)"
  else
    echo "== $name (at most ${limit}s)"
    timeout --kill-after=5 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
    case $? in 0) status=ok ;; 124|137) status="timed out" ;; *) status=failed ;; esac
    tail -n 3 "$RESULTS/$name.log"
  fi
  [ "$status" = ok ] || FAILED=1
  printf '%s\t%s\t%s\n' "$name" "$status" $((SECONDS - start)) >> "$RESULTS/stages.tsv"
}

# links N: a folder of N links cycling over the KADIS-like photos (the benchmarks need batch x steps images).
links() {
  local folder=$SCRATCH/links-$1
  mkdir -p "$folder"
  local files=("$SCRATCH"/photos/*.png) i
  for ((i = 0; i < $1; i++)); do ln -sf "${files[i % ${#files[@]}]}" "$folder/$(printf 'img%05d.png' "$i")"; done
  echo "$folder"
}

stage machine 20 bash -c 'nvidia-smi || echo "no nvidia-smi"; lscpu; df -h /dev/shm
  python -c "import json; from arniqa.utils.runtime import describe; print(json.dumps(describe(), indent=1))"' 
stage cuda_tests 90 python -m pytest tests/degradations/test_cuda.py -q -rs -p no:cacheprovider
mkdir -p "$SCRATCH/photos"
stage photos 40 python -c "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; from training import make_photos; make_photos(Path('$PHOTOS'), Path('$SCRATCH/photos'), $PHOTO_COUNT)"

BENCH=(python benchmarks/training.py --out "$RESULTS" --crop-size "$CROP" --backbone "$BACKBONE")
PIPE_BATCH=$DEVICE_BATCH
stage pipeline 45 "${BENCH[@]}" --pipeline-only --workers "$PIPE_WORKERS" --batch "$PIPE_BATCH" --steps $((3 * STEPS)) \
  --warmup "$PIPE_WORKERS" --profile-samples "$PROFILE" --images "$(links $((PIPE_BATCH * (3 * STEPS + PIPE_WORKERS + 1))))" --name pipeline
stage step_device_b$DEVICE_BATCH 50 "${BENCH[@]}" --device "$DEVICE" --precision "$PRECISION" --degrade-on device \
  --workers "$DEVICE_WORKERS" --batch "$DEVICE_BATCH" --steps "$STEPS" --warmup "$DEVICE_WARMUP" --name "step-device-b$DEVICE_BATCH" \
  --images "$(links $((DEVICE_BATCH * (STEPS + DEVICE_WARMUP + 1))))"
for B in $WORKER_BATCHES; do
  N=$((B > 64 ? (STEPS + 1) / 2 : STEPS))  # batch 256: half the steps, each is 16x batch 16's
  stage step_workers_b$B $((B > 64 ? 100 : 50)) "${BENCH[@]}" --device "$DEVICE" --precision "$PRECISION" \
    --degrade-on workers --workers "$BENCH_WORKERS" --batch "$B" --steps "$N" --warmup "$WARMUP" \
    --name "step-workers-b$B" --images "$(links $((B * (N + WARMUP + 1))))"
done
stage se_vs_resnet50 200 python -c "from arniqa.cli import main; main()" ablate configs/gpu_se_vs_resnet50.yaml -o "$SCRATCH/ablation" \
  --set data.pristine="$PHOTOS" "${ABLATE[@]}"
for f in report.md summary.json study.json data/split.json "$SCRATCH"/ablation/*.png; do
  [ -f "$SCRATCH/ablation/$f" ] && cp "$SCRATCH/ablation/$f" "$REPORT/"
  [ -f "$f" ] && cp "$f" "$REPORT/"
done

python - "$RESULTS" <<'EOF' > "$RESULTS/summary.md"
import json, sys
from pathlib import Path
results = Path(sys.argv[1])
print("| run | degrade_on | batch | workers | encoder s/step | full s/step | full / encoder | samples/s |")
print("|---|---|---|---|---|---|---|---|")
for path in sorted(results.glob("step-*.json"), key=lambda p: (p.name.split("-")[1], int(p.stem.split("-b")[-1]))):
    r = json.loads(path.read_text())
    print(f"| {path.stem} | {r['degrade_on']} | {r['batch']} | {r['workers']} | {r['encoder_s_per_step']:.3f} | "
          f"{r['full_s_per_step']:.3f} | {r['full_s_per_step'] / r['encoder_s_per_step']:.2f} | {r['full_samples_per_s']:.1f} |")
pipeline = results / "pipeline.json"
if pipeline.exists():
    p = json.loads(pipeline.read_text())
    print(f"\nDataLoader alone (degrade_on=workers, {p['workers']} workers, batch {p['batch']}): "
          f"{p['pipeline_samples_per_s']:.1f} samples/s, {p['per_worker_samples_per_s']:.1f} per worker.")
EOF
echo "== stages"; cat "$RESULTS/stages.tsv"
exit $FAILED
