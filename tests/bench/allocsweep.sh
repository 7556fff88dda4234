#!/usr/bin/env bash
# Every allocator at 2.5, 3.0 and 3.5 bits per weight on both shared models, against the uniform
# plans: analyze calibrates on the C4 sample (64 x 256 tokens) and measures every layer with RTN
# and GPTQ at 2, 3, 4 and 8 bits in groups of 128 and 32 (proxy, output error, HAWQ and end-to-end
# KL on 4 held-out windows); allocate fits the budget; eval quantizes the plan on the same
# calibration windows and scores it (llama.cpp protocol, 200 windows of 512) on WikiText-2 test
# and on TinyStories validation, the text these models were trained on, with the mean KL from
# the float model there. On these small TinyStories models WikiText-2 is out of domain, and its
# perplexity can fall while the model moves away from the float one.
# Prints a markdown table of plans, then how each cheap measure ranks layers against the KL.
# usage: tests/bench/allocsweep.sh QUANTLENS_CLI [SHARED_DIR]
set -uo pipefail
cli=$1; shared=${2:-../shared}
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
data=$shared/data/wikitext-2-raw/wiki.test.raw
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cal=(--calib "$calib" --samples 64 --seqlen 256)
stories=$shared/data/tinystories/valid_hf_first1000_eot.txt
one() { "$cli" eval "$1" --data "$3" --chunks 200 --recipe "$2" "${cal[@]}" --kl-ref "$1" --json 2>/dev/null; }
# bits per weight, WikiText-2 ppl, TinyStories ppl, TinyStories mean KL
ppl() { { one "$1" "$2" "$data"; one "$1" "$2" "$stories"; } | python3 -c "
import json,sys
d=json.JSONDecoder(); s=sys.stdin.read().strip(); a,i=d.raw_decode(s); b,_=d.raw_decode(s[i:].strip())
print('%.4f | %.2f | %.2f | %.4f' % (a['quantization']['bits_per_weight'], a['ppl'], b['ppl'], b['kl']['mean_kl']))"; }
spearman=""
echo "| model | plan | measure | bits/weight | WikiText-2 ppl | TinyStories ppl | TinyStories KL |"
echo "|---|---|---|---|---|---|---|"
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
      echo "| $model | uniform $m w$b g128 | - | $(ppl "$dir" "$work/u.json") |"
    done
  done
  for bpw in 2.5 3.0 3.5; do
    for al in knapsack greedy baq entropy spike hawq; do
      measures="kl"; [ "$al" = knapsack ] || [ "$al" = greedy ] && measures="kl proxy output"
      [ "$al" = hawq ] && measures="hawq"
      for m in $measures; do
        margs=(--measure "$m"); [ "$al" = hawq ] && margs=()
        "$cli" allocate "$dir" --analysis "$work/$model.h5" --budget "${bpw}bpw" --allocator "$al" "${margs[@]}" \
          --out "$work/r.json" > /dev/null 2>&1 || { echo "| $model | $al at $bpw | $m | failed | - | - | - |"; continue; }
        echo "| $model | $al at $bpw | $m | $(ppl "$dir" "$work/r.json") |"
      done
    done
  done
done
echo
echo "| model | option | Spearman proxy vs KL | output error vs KL | HAWQ vs KL |"
echo "|---|---|---|---|---|"
printf "%s" "$spearman"
