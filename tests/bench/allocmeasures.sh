#!/usr/bin/env bash
# The exact knapsack steered by each sensitivity measure (end-to-end KL, the weight Fisher, the
# output Fisher) at 3.0 bits per weight, at the size of uniform 3-bit GPTQ and at 3.5, on both
# shared models. Options, calibration and scoring as in allocequal.sh: RTN and GPTQ at 2, 3, 4
# and 8 bits in groups of 128 and 32, 64 x 256 C4 tokens, TinyStories validation perplexity and
# KL from the float model over 200 windows of 512.
# usage: tests/bench/allocmeasures.sh QUANTLENS_CLI [SHARED_DIR]
set -uo pipefail
cli=$1; shared=${2:-../shared}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/allocscore.sh"
echo "| model | plan | measure | bits/weight | TinyStories ppl | TinyStories KL |"
echo "|---|---|---|---|---|---|"
for model in stories260k tinystories-656k; do
  dir=$shared/models/$model
  echo '{"version": 1, "rules": [{"match": "*", "method": "gptq", "bits": 3, "sym": false, "group": 128}]}' > "$work/g3.json"
  "$cli" analyze "$dir" "${cal[@]}" --sensitivity full --sens-methods rtn,gptq --sens-bits 2,3,4,8 \
    --sens-groups 128,32 --force --json --out "$work/f.h5" > /dev/null 2>&1 || { echo "analyze failed"; continue; }
  g3=$(score "$dir" "$work/g3.json")
  echo "| $model | uniform gptq w3 g128 | - | $g3 |"
  same=$(echo "$g3" | cut -d' ' -f1)
  for bpw in 3.0 "$same" 3.5; do
    for m in kl fisher fisher-out; do
      "$cli" allocate "$dir" --analysis "$work/f.h5" --budget "${bpw}bpw" --allocator knapsack --measure "$m" \
        --out "$work/k.json" > /dev/null 2>&1 || { echo "| $model | knapsack at $bpw | $m | failed | - | - |"; continue; }
      echo "| $model | knapsack at $bpw | $m | $(score "$dir" "$work/k.json") |"
    done
  done
done
