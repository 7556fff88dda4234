#!/usr/bin/env bash
# Every allocator at 2.5, 3.0 and 3.5 bits per weight on both shared models, against uniform RTN
# at 2, 3 and 4 bits: analyze calibrates on the C4 sample (64 x 256 tokens, end-to-end KL
# sensitivity), allocate fits the budget, and eval scores the plan on WikiText-2 test (llama.cpp
# protocol, 32 windows of 512). The options are the widths analyze measures (RTN asymmetric g128).
# usage: tests/bench/allocsweep.sh QUANTLENS_CLI [SHARED_DIR]
set -uo pipefail
cli=$1; shared=${2:-../shared}
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
data=$shared/data/wikitext-2-raw/wiki.test.raw
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ppl() { "$cli" eval "$1" --data "$data" --chunks 32 --recipe "$2" --json 2>/dev/null |
  python3 -c "import json,sys; j=json.load(sys.stdin); print('%.4f %.2f' % (j['quantization']['bits_per_weight'], j['ppl']))"; }
echo "| model | plan | measure | bits/weight | WikiText-2 ppl |"
echo "|---|---|---|---|---|"
for model in stories260k tinystories-656k; do
  dir=$shared/models/$model
  "$cli" analyze "$dir" --calib "$calib" --samples 64 --seqlen 256 --sensitivity full --out "$work/$model.h5" \
    --force > /dev/null 2>&1 || { echo "analyze failed on $model"; continue; }
  for b in 2 3 4; do
    echo "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"rtn\", \"bits\": $b, \"sym\": false, \"group\": 128}]}" > "$work/u.json"
    read -r bw p <<< "$(ppl "$dir" "$work/u.json")"
    echo "| $model | uniform RTN w$b g128 | - | $bw | $p |"
  done
  for bpw in 2.5 3.0 3.5; do
    for al in knapsack greedy baq entropy spike hawq; do
      measures="kl"; [ "$al" = knapsack ] || [ "$al" = greedy ] && measures="kl proxy output"
      [ "$al" = hawq ] && measures="hawq"
      for m in $measures; do
        margs=(--measure "$m"); [ "$al" = hawq ] && margs=()
        "$cli" allocate "$dir" --analysis "$work/$model.h5" --budget "${bpw}bpw" --allocator "$al" "${margs[@]}" \
          --out "$work/r.json" > /dev/null 2>&1 || { echo "| $model | $al at $bpw | $m | failed | - |"; continue; }
        read -r bw p <<< "$(ppl "$dir" "$work/r.json")"
        echo "| $model | $al at $bpw | $m | $bw | $p |"
      done
    done
  done
done
