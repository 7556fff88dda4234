#!/usr/bin/env bash
# OmniQuant and AutoRound at their published settings (W3 g128, 128 x 512 calibration tokens of
# the C4 sample; 20 epochs, and 200 steps of 8 windows) on a synthetic SmolLM-135M-shaped model
# cut to BLOCKS blocks: time per block, peak RSS, the whole 30-block model's time extrapolated,
# and each block's time as a multiple of the training's own forward + backward passes, priced
# by bench-backward in the same run.
# usage: bench_blocktrain.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR RECIPES_DIR [BLOCKS] [THREADS]
set -euo pipefail
cli=$1; make=$2; models=$3; shared=$4; recipes=$5; blocks=${6:-2}; threads=${7:-2}
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
if [ ! -f "$calib" ] || [ ! -f "$shared/models/stories260k/tokenizer.model" ]; then
  echo "skipped: needs $calib and the stories260k tokenizer in $shared"; exit 0
fi
mkdir -p "$models"
model=$(cd "$models" && pwd)/smollm-135m-${blocks}blocks-f32
[ -f "$model/model.safetensors" ] || "$make" "$model" --preset smollm-135m --dtype F32 --layers "$blocks"
cp "$shared/models/stories260k/tokenizer.model" "$shared/models/stories260k/tokenizer_config.json" "$model/"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$cli" bench-backward "$model" --ctx 512 --reps 3 --threads "$threads" --json > "$out/backward.json"
for recipe in w3-omniquant-g128 w3-autoround-g128; do
  /usr/bin/time -f '%e %M' -o "$out/time" "$cli" quantize "$model" --recipe "$recipes/$recipe.json" --calib "$calib" \
    --threads "$threads" --out "$out/run" --force --json > "$out/report.json"
  read -r wall kib < "$out/time"
  python3 - "$out/report.json" "$out/backward.json" "$recipes/$recipe.json" "$wall" "$kib" "$blocks" <<'PY'
import json, sys
j, b, r = (json.load(open(p)) for p in sys.argv[1:4])
wall, kib, blocks = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
params = r["rules"][0]["params"]
windows = r["calibration"]["samples"]
steps = params["epochs"] * windows if "epochs" in params else params["iters"] * params.get("batch", 8)
step = b["forward_backward_seconds"]  # one window's forward + backward, measured now
train = sum(l.get("seconds", 0) for l in j["layers"]) / blocks
print("%s: %d blocks, %d windows x 512; per block %.1f s training (%d forward+backward steps at %.3f s: %.2fx "
      "their cost); wall %.0f s, peak RSS %d MiB; 30 blocks: about %.1f h"
      % (r["name"], blocks, windows, train, steps, step, train / (steps * step), wall, kib // 1024,
         (wall + (30 - blocks) * train) / 3600))
PY
done
