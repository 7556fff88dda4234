#!/usr/bin/env bash
# GPTQ speed: one 4096 x 4096 layer at 4 bits g128 from a precomputed Hessian (GFLOP/s against
# the GEMM peak measured in the same run), then the whole W4 GPTQ recipe on a synthetic
# SmolLM-135M-shaped model with 128 x 512 calibration tokens of the C4 sample (time, peak RSS).
# usage: bench_gptq.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR RECIPES_DIR [THREADS]
set -euo pipefail
cli=$1; make=$2; models=$3; shared=$4; recipes=$5; threads=${6:-2}
echo "== GPTQ of one 4096 x 4096 layer, int4 g128"
"$cli" bench-gptq --size 4096 --tokens 4096 --bits 4 --group 128 --threads "$threads" --json
source "$(dirname "$0")/benchmodel.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== W4 GPTQ g128 pipeline (sequential), 128 x 512 tokens"
/usr/bin/time -f '%e %M' -o "$out/time" "$cli" quantize "$model" --recipe "$recipes/w4-gptq-g128.json" --calib "$calib" \
  --samples 128 --seqlen 512 --threads "$threads" --out "$out/run" --json > "$out/report.json"
read -r wall kib < "$out/time"
python3 - "$out/report.json" "$wall" "$kib" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
gptq = sum(l.get("seconds", 0) for l in j["layers"])
print("pipeline_seconds=%.1f wall_seconds=%s peak_rss_mib=%d layers=%d gptq_seconds=%.1f block_forwards=%d block_parts=%d bits_per_weight=%.3f"
      % (j["seconds"], sys.argv[2], int(sys.argv[3]) // 1024, j["layers_quantized"], gptq, j["block_forwards"], j.get("block_parts", 0), j["bits_per_weight"]))
PY
