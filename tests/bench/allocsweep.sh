#!/usr/bin/env bash
# Every allocator at 2.5, 3.0 and 3.5 bits per weight on both shared models, against the uniform
# plans: analyze calibrates on the C4 sample (64 x 256 tokens) and measures every layer with RTN
# and GPTQ at 2, 3, 4 and 8 bits in groups of 128 and 32 (proxy, output error, HAWQ and end-to-end
# KL on 4 held-out windows); allocate fits the budget; eval quantizes the plan on the same
# calibration windows and scores it on WikiText-2 test (llama.cpp protocol, 32 windows of 512).
# Prints a markdown table of plans, then how each cheap measure ranks layers against the KL.
# usage: tests/bench/allocsweep.sh QUANTLENS_CLI [SHARED_DIR]
set -uo pipefail
cli=$1; shared=${2:-../shared}
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
data=$shared/data/wikitext-2-raw/wiki.test.raw
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cal=(--calib "$calib" --samples 64 --seqlen 256)
ppl() { "$cli" eval "$1" --data "$data" --chunks 32 --recipe "$2" "${cal[@]}" --json 2>/dev/null |
  python3 -c "import json,sys; j=json.load(sys.stdin); print('%.4f %.2f' % (j['quantization']['bits_per_weight'], j['ppl']))"; }
spearman=""
echo "| model | plan | measure | bits/weight | WikiText-2 ppl |"
echo "|---|---|---|---|---|"
for model in stories260k tinystories-656k; do
  dir=$shared/models/$model
  "$cli" analyze "$dir" "${cal[@]}" --sensitivity full --sens-methods rtn,gptq --sens-bits 2,3,4,8 \
    --sens-groups 128,32 --out "$work/$model.h5" --force --json > "$work/$model.json" 2>/dev/null ||
    { echo "analyze failed on $model"; continue; }
  spearman+=$(python3 - "$work/$model.json" "$model" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["end_to_end"]
for i, o in enumerate(e["options"]):
    print("| %s | %s | %.3f | %.3f | %.3f |" % (sys.argv[2], o, e["spearman_proxy_kl"][i],
          e["spearman_rel_mse_kl"][i], e["spearman_hawq_kl"][i]))
PY
)$'\n'
  for m in rtn gptq; do
    for b in 2 3 4; do
      echo "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"$m\", \"bits\": $b, \"sym\": false, \"group\": 128}]}" > "$work/u.json"
      read -r bw p <<< "$(ppl "$dir" "$work/u.json")"
      echo "| $model | uniform $m w$b g128 | - | $bw | $p |"
    done
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
echo
echo "| model | option | Spearman proxy vs KL | output error vs KL | HAWQ vs KL |"
echo "|---|---|---|---|---|"
printf "%s" "$spearman"
