#!/usr/bin/env bash
# Issue 29's measurements (docs/explain.md) in one run, on a GPU machine or (--smoke) on tiny CPU settings:
#   1. a regressor for MODEL: ridge on the synthetic KADID-style set of the first REG_REFS photos of FIT
#      (arniqa benchmark synthetic + arniqa evaluate, 10 reference-disjoint splits), in the background of
#   2. the explanation head: arniqa explain fit FIT --test TEST (accuracy on TEST's held-out references),
#   3. map localisation on TEST: benchmarks/map_localisation.py,
#   4. the 12 MP map benchmark on this machine's CPU: benchmarks/maps.py (16 threads).
# Results in OUT: explainer.safetensors + .json, map-localisation.json, maps-cpu.json, eval.json; each stage's
# last 40 lines on stdout.
#
#   benchmarks/explain_session.sh MODEL FIT TEST OUT [--smoke]
#
# MODEL: a checkpoint of this project (.safetensors), or one whose floating tensors were halved to fp16 and
# whose projector was dropped to travel (MODEL is then restored to fp32 with a placeholder projector; the
# quality features do not use the projector).
set -uo pipefail
[ $# -ge 4 ] || { echo "usage: $0 MODEL FIT TEST OUT [--smoke]" >&2; exit 2; }
MODEL=$1; FIT=$2; TEST=$3; OUT=$4; SMOKE=${5:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
S=$(mktemp -d)
trap 'rm -rf "$S"' EXIT
mkdir -p "$OUT"
if [ "$SMOKE" = --smoke ]; then
  DEV=cpu; SIZE=64x48; REG_REFS=3; CHAINS=2; WORKERS=2; CROP=32; STRIDE=16; LOC=128x96; MAPS=(--threads 1 --repeats 1 --engines torch --photo-size 200x150)
else
  DEV=cuda; SIZE=512x384; REG_REFS=16; CHAINS=40; WORKERS=10; CROP=224; STRIDE=32; LOC=512x384; MAPS=(--threads 16 --repeats 3)
fi
status=0
if ! python3 -c "import pillow_heif" 2>/dev/null; then  # HEIC support only; no HEIC file is read here
  mkdir -p "$S/stub" && echo "def register_heif_opener(): pass" > "$S/stub/pillow_heif.py"
  export PYTHONPATH="$PYTHONPATH:$S/stub"; echo "pillow_heif missing: stubbed"
fi
stage() { local name=$1; shift; local t=$SECONDS; echo "== $name: $*"; "$@" > "$S/$name.log" 2>&1; local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t)) s"; tail -n 40 "$S/$name.log"; [ $rc = 0 ] || status=1; }

python3 - "$MODEL" "$S/model.safetensors" <<'PY'
import sys, torch
from arniqa.models.arniqa import ARNIQA
from arniqa.models.checkpoint import arniqa_metadata, extra_config, save_checkpoint
from arniqa.models.files import read_state_dict
meta = arniqa_metadata(sys.argv[1])
state = {k: v.float() if v.is_floating_point() else v for k, v in read_state_dict(sys.argv[1]).items()}
options = dict(meta.get("backbone_options") or {})
model = ARNIQA(meta["backbone"], **{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
full = model.state_dict()
missing = sorted(set(full) - set(state))
assert all(k.startswith("projector.") for k in missing), missing[:5]
model.load_state_dict({**full, **state})
extra = extra_config(meta)  # the halved copy's own keys: its dtype and such are set by the save
save_checkpoint(sys.argv[2], model, **extra, restored_from=sys.argv[1], placeholder_projector=bool(missing))
print("restored", sys.argv[1], "missing", len(missing))
PY
( stage synthetic python3 -m arniqa.cli benchmark synthetic --pristine "$FIT" --images $REG_REFS --size $SIZE -o "$S/synth"
  stage evaluate python3 -m arniqa.cli evaluate --dataset kadid10k --root "$S/synth" --checkpoint "$S/model.safetensors" \
    --device $DEV --crop-size $CROP --workers 4 -o "$S/eval" --cache-dir "$S/cache"
  cp "$S/eval/results.json" "$OUT/eval.json" ) &  # the regressor, while the head's samples are made
stage explain python3 -m arniqa.cli explain fit "$FIT" --test "$TEST" --checkpoint "$S/model.safetensors" \
  -o "$OUT/explainer.safetensors" --size $SIZE --chains $CHAINS --workers $WORKERS --device $DEV --batch-size 16
wait
[ -f "$S/eval/checkpoint_kadid10k.safetensors" ] || status=1
stage localisation python3 "$ROOT/benchmarks/map_localisation.py" --checkpoint "$S/eval/checkpoint_kadid10k.safetensors" \
  --photos "$TEST" --device $DEV --size $LOC --crop $CROP --stride $STRIDE --out "$OUT/map-localisation.json"
stage maps python3 "$ROOT/benchmarks/maps.py" "${MAPS[@]}" --out "$OUT/maps-cpu.json"
exit $status
