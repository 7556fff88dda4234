#!/usr/bin/env bash
# Plan-edit latency on the synthetic SmolLM-135M-shaped model (random weights: the KL values
# mean nothing, the times do): quantlens-cli whatif of a W4 RTN plan with one layer set to 3
# bits, in block 2 (first half) and block 20 (second half), on a quick slice of 8 x 512
# WikiText-2 tokens. Reports the edited layer's re-quantization, the restarted quick KL and the
# first full quick KL of the same run, whose ratio is the incremental path's gain; with fp32
# products and, where the CPU has AVX512-BF16, with bf16 ones (the plan editor's default there).
# usage: bench_whatif.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR
set -euo pipefail
cli=$1; make=$2; models=$3; shared=$4
source "$(dirname "$0")/benchmodel.sh"
data=$shared/data/wikitext-2-raw/wiki.test.raw
[ -f "$data" ] || { echo "skipped: needs $data"; exit 0; }
work=$(mktemp -d "$models/whatif-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo '{"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 4, "sym": true, "group": 32}]}' > "$work/rtn.json"
computes=fp32
grep -qw avx512_bf16 /proc/cpuinfo && computes="fp32 bf16" || echo "bf16 products skipped: this CPU lacks AVX512-BF16"
for compute in $computes; do
  for block in 2 20; do
    "$cli" whatif "$model" --recipe "$work/rtn.json" --edit "model.layers.$block.mlp.down_proj:bits=3" \
      --data "$data" --ctx 512 --quick 8 --compute "$compute" --json > "$work/w.json"
    python3 - "$work/w.json" "$block" "$compute" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); b, a = j["before"], j["after"]
print("%s products, edit in block %2s: layer re-quantized in %.3f s (%d layer); quick KL %.2f s restarting at "
      "that block (%d of %d blocks) against %.2f s for the full quick KL: %.2fx" % (
      sys.argv[3], sys.argv[2], a["quantize_seconds"], a["layers_quantized"], a["eval_seconds"], a["blocks_run"],
      b["blocks_run"], b["eval_seconds"], b["eval_seconds"] / a["eval_seconds"]))
PY
  done
done
