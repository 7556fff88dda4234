#!/usr/bin/env bash
# The trained methods (OmniQuant, AutoRound) beside RTN, GPTQ and AWQ at W3 g128, and OmniQuant
# beside SmoothQuant at W4A4 and W6A6, on both shared models: the table of docs/results.md. Each recipe
# is quantized once (quantize --out, C4 calibration as the recipe says) and the run evaluated on
# WikiText-2 test and the TinyStories excerpt (paper protocol, ctx 512, 16 windows). Prints
# Markdown rows with the quantization's wall time and, for block methods, the mean over blocks
# of the block output MSE before and after training.
# W6A6 and the W4A4 ablation without LET (w4a4-omniquant-lwc) follow. QL_RECIPES="r1 r2 ..."
# runs only those recipes.
# usage: tests/bench/trainedresults.sh QUANTLENS_CLI [SHARED_DIR] [RECIPES_DIR] [MODELS...]
set -uo pipefail
cli=$1; shared=${2:-../shared}; recipes=${3:-resources/recipes}; shift $(( $# < 3 ? $# : 3 ))
models=("$@"); [ ${#models[@]} -eq 0 ] && models=(stories260k tinystories-656k)
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
texts=("$shared/data/wikitext-2-raw/wiki.test.raw" "$shared/data/tinystories/valid_hf_first1000_eot.txt")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ppl() { # model run text
  "$cli" eval "$1" --run "$2" --data "$3" --protocol paper --ctx 512 --chunks 16 --json 2>>"$work/err" |
    python3 -c "import json,sys; print('%.4f' % json.load(sys.stdin)['ppl'])" 2>/dev/null || echo "failed"
}
echo "| model | recipe | bits/weight | WikiText-2 ppl | TinyStories ppl | quantize s | block MSE before → after |"
echo "|---|---|---|---|---|---|---|"
for model in "${models[@]}"; do
  for r in ${QL_RECIPES:-w3-rtn-g128 w3-gptq-g128 w3-awq-g128 w3-omniquant-g128 w3-autoround-g128 w4a4-smoothquant \
           w4a4-omniquant-lwc w4a4-omniquant w6a6-smoothquant w6a6-omniquant}; do
    run=$work/$model-$r
    t0=$(date +%s.%N)
    if ! "$cli" quantize "$shared/models/$model" --recipe "$recipes/$r.json" --calib "$calib" --out "$run" --force \
      --json >"$work/q.json" 2>>"$work/err"; then
      echo "| $model | $r | | failed: $(tail -1 "$work/err" | cut -c1-90) | | | |"; continue
    fi
    secs=$(python3 -c "print('%.0f' % ($(date +%s.%N) - $t0))")
    read -r bw mse <<< "$(python3 - "$work/q.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
blocks = {}
for l in j["layers"]:
    m = l.get("metrics", {})
    if "block_loss_before" in m:
        blocks[l["layer"].split(".")[2]] = (m["block_loss_before"], m["block_loss_after"])
mse = "%.3g → %.3g" % tuple(sum(v[i] for v in blocks.values()) / len(blocks) for i in (0, 1)) if blocks else "-"
print("%.3f %s" % (j["bits_per_weight"], mse.replace(" ", "_")))
PY
)"
    echo "| $model | $r | $bw | $(ppl "$shared/models/$model" "$run" "${texts[0]}") | $(ppl "$shared/models/$model" "$run" "${texts[1]}") | $secs | ${mse//_/ } |"
  done
done
