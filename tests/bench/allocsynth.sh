#!/usr/bin/env bash
# The allocation comparison of allocsweep.sh on a synthetic model of SmolLM-135M's shapes (hidden
# 576, ffn 1536, 30 blocks, vocab 49152), whose rows are long enough that a per-row scale and zero
# cost 0.03 bits per weight. Its weights are random (Gaussian, std 0.02 like Hugging Face's
# initialisation, embeddings included), so its perplexity is near the vocabulary size and means
# nothing as language modelling; the KL from the float model measures how far each plan moves it.
# analyze calibrates on the C4 sample (16 x 128 tokens) and measures every linear with GPTQ at 2, 3
# and 4 bits in groups of 128 and per row (end-to-end KL on 1 held-out window); allocate fits the
# budget on that KL; eval quantizes each plan on the same windows and scores it on 20 windows of 512
# TinyStories tokens against the float model.
# Slow: 210 layers x 6 options of end-to-end KL through a 49152-token head (well over an hour on
# 2 cores at 2 x 256 held-out tokens; these settings are a quarter of that).
# usage: tests/bench/allocsynth.sh QUANTLENS_CLI QL_MAKE_FIXTURE [SHARED_DIR]
set -uo pipefail
cli=$1; mk=$2; shared=${3:-../shared}
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
stories=$shared/data/tinystories/valid_hf_first1000_eot.txt
work=${QL_WORK:-$(mktemp -d)}; [ -n "${QL_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
dir=$work/smollm135m-init
"$mk" "$dir" --preset smollm-135m --dtype F32 --embed-std 0.02 2>/dev/null || { echo "fixture failed"; exit 1; }
cp "$shared/models/stories260k/tokenizer.model" "$shared/models/stories260k/tokenizer_config.json" "$dir/"
cal=(--calib "$calib" --samples 16 --seqlen 128)
score() { "$cli" eval "$dir" --data "$stories" --chunks 20 --recipe "$1" "${cal[@]}" --kl-ref "$dir" --json 2>/dev/null |
  python3 -c "
import json,sys
a=json.load(sys.stdin)
print('%.4f | %.1f | %.4f' % (a['quantization']['bits_per_weight'], a['ppl'], a['kl']['mean_kl']))"; }
start=$(date +%s)
"$cli" analyze "$dir" "${cal[@]}" --sensitivity full --kl-samples 1 --sens-methods gptq --sens-bits 2,3,4 \
  --sens-groups 128,0 --out "$work/a.h5" --force --json > "$work/a.json" 2>/dev/null || { echo "analyze failed"; exit 1; }
echo "analyze: $(( $(date +%s) - start )) s"
echo "| plan | measure | bits/weight | TinyStories ppl | TinyStories KL |"
echo "|---|---|---|---|---|"
for m in rtn gptq; do
  for g in 128 0; do
    echo "{\"version\": 1, \"rules\": [{\"match\": \"*\", \"method\": \"$m\", \"bits\": 3, \"sym\": false, \"group\": $g}]}" > "$work/u.json"
    gl=g$g; [ "$g" = 0 ] && gl=row
    echo "| uniform $m w3 $gl | - | $(score "$work/u.json") |"
  done
done
for bpw in 2.5 3.0 3.5; do
  for al in knapsack greedy; do
    "$cli" allocate "$dir" --analysis "$work/a.h5" --budget "${bpw}bpw" --allocator "$al" --measure kl \
      --out "$work/r.json" > /dev/null 2>&1 || { echo "| $al at $bpw | kl | failed | - | - |"; continue; }
    echo "| $al at $bpw | kl | $(score "$work/r.json") |"
  done
done
