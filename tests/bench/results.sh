#!/usr/bin/env bash
# Perplexity of every example recipe on both shared models, calibrated on the C4 sample and
# evaluated on WikiText-2 test and the TinyStories excerpt (paper protocol, ctx 512, 16
# windows): the table of docs/results.md. Prints Markdown rows.
# usage: tests/bench/results.sh QUANTLENS_CLI [SHARED_DIR] [RECIPES_DIR]
set -uo pipefail
cli=$1; shared=${2:-../shared}; recipes=${3:-resources/recipes}
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
texts=("$shared/data/wikitext-2-raw/wiki.test.raw" "$shared/data/tinystories/valid_hf_first1000_eot.txt")
f4() { python3 -c "print('%.4f' % $1)"; }
ppl() { # model recipe|"" text
  local extra=()
  [ -n "$2" ] && extra=(--recipe "$2" --calib "$calib")
  "$cli" eval "$1" --data "$3" --protocol paper --ctx 512 --chunks 16 --json "${extra[@]}" 2>/tmp/ql-results-err |
    python3 -c "import json,sys; j=json.load(sys.stdin); q=j.get('quantization',{}); print('%.10g %.3f' % (j['ppl'], q.get('bits_per_weight', 32)))" 2>/dev/null ||
    echo "- $(tail -1 /tmp/ql-results-err | sed 's/^error: //' | cut -c1-90)"
}
echo "| model | recipe | bits/weight | WikiText-2 ppl | TinyStories ppl |"
echo "|---|---|---|---|---|"
for model in stories260k tinystories-656k; do
  dir=$shared/models/$model
  read -r w bw <<< "$(ppl "$dir" "" "${texts[0]}")"
  read -r t _ <<< "$(ppl "$dir" "" "${texts[1]}")"
  echo "| $model | float | 32 | $(f4 "$w") | $(f4 "$t") |"
  # Transforms alone (no quantization) must leave perplexity unchanged.
  for tr in hadamard smoothquant; do
    only=$(mktemp --suffix=.json)
    echo "{\"version\": 1, \"rules\": [], \"transforms\": [{\"method\": \"$tr\"}]}" > "$only"
    a=$(ppl "$dir" "$only" "${texts[0]}"); b=$(ppl "$dir" "$only" "${texts[1]}")
    rm -f "$only"
    echo "| $model | $tr only, no quantization | 32 | $(f4 "${a% *}") (rel. diff $(python3 -c "print('%.1e' % abs(${a% *}/$w - 1))")) | $(f4 "${b% *}") (rel. diff $(python3 -c "print('%.1e' % abs(${b% *}/$t - 1))")) |"
  done
  for r in "$recipes"/*.json; do
    a=$(ppl "$dir" "$r" "${texts[0]}"); b=$(ppl "$dir" "$r" "${texts[1]}")
    if [[ $a == -* ]]; then echo "| $model | $(basename "$r" .json) | | not available: ${a#- } | |"; continue; fi
    echo "| $model | $(basename "$r" .json) | ${a#* } | $(f4 "${a% *}") | $(f4 "${b% *}") |"
  done
done
