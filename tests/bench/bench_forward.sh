#!/usr/bin/env bash
# Prompt-processing throughput (fp32, ctx 512) on a synthetic model with SmolLM-135M's shapes,
# reported with the fraction of the GEMM peak measured in the same run.
# usage: bench_forward.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR [THREADS]
set -euo pipefail
cli=$1; make=$2; models=$3; threads=${4:-2}
model=$models/smollm-135m-f32
if [ ! -f "$model/model.safetensors" ]; then
  "$make" "$model" --preset smollm-135m --dtype F32
fi
echo "== bench-forward: $model, ctx 512, $threads threads (logits for the last token, as llama-bench pp512)"
"$cli" bench-forward "$model" --ctx 512 --chunks 4 --threads "$threads" --json
echo "== same, logits for every position (what perplexity needs)"
"$cli" bench-forward "$model" --ctx 512 --chunks 4 --threads "$threads" --all-logits --json
