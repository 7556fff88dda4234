#!/usr/bin/env bash
# The exact knapsack against uniform 3-bit GPTQ at the same size and at 3.0 and 3.5 bits per
# weight, on both shared models, with its end-to-end KL measured two ways: each layer alone in the
# float model (analyze --sensitivity full) and each layer inside the uniform GPTQ W3 g128 plan
# (--kl-context, exllamav2-style). Options, calibration and scoring as in allocsweep.sh: RTN and
# GPTQ at 2, 3, 4 and 8 bits in groups of 128 and 32, 64 x 256 C4 tokens, TinyStories validation
# perplexity and KL from the float model over 200 windows of 512.
# usage: tests/bench/allocequal.sh QUANTLENS_CLI [SHARED_DIR]
set -uo pipefail
cli=$1; shared=${2:-../shared}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/allocscore.sh"
echo "| model | plan | KL measured | bits/weight | TinyStories ppl | TinyStories KL |"
echo "|---|---|---|---|---|---|"
for model in stories260k tinystories-656k; do
  dir=$shared/models/$model
  echo '{"version": 1, "rules": [{"match": "*", "method": "gptq", "bits": 3, "sym": false, "group": 128}]}' > "$work/g3.json"
  echo '{"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 3, "sym": false, "group": 128}]}' > "$work/r3.json"
  opts=(--sensitivity full --sens-methods rtn,gptq --sens-bits 2,3,4,8 --sens-groups 128,32 --force --json)
  "$cli" analyze "$dir" "${cal[@]}" "${opts[@]}" --out "$work/f.h5" > /dev/null 2>&1 || { echo "analyze failed"; continue; }
  "$cli" analyze "$dir" "${cal[@]}" "${opts[@]}" --kl-context "$work/g3.json" --out "$work/c.h5" > /dev/null 2>&1 ||
    { echo "analyze in context failed"; continue; }
  r3=$(score "$dir" "$work/r3.json"); g3=$(score "$dir" "$work/g3.json")
  echo "| $model | uniform rtn w3 g128 | - | $r3 |"
  echo "| $model | uniform gptq w3 g128 | - | $g3 |"
  same=$(echo "$g3" | cut -d' ' -f1)
  for bpw in 3.0 "$same" 3.5; do
    for m in f c; do
      "$cli" allocate "$dir" --analysis "$work/$m.h5" --budget "${bpw}bpw" --allocator knapsack --measure kl \
        --out "$work/k.json" > /dev/null 2>&1 || { echo "| $model | knapsack at $bpw | $m | failed | - | - |"; continue; }
      label="alone in float"; [ "$m" = c ] && label="inside uniform gptq w3 g128"
      echo "| $model | knapsack at $bpw | $label | $(score "$dir" "$work/k.json") |"
    done
  done
done
