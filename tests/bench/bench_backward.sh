#!/usr/bin/env bash
# One decoder block's forward and backward (input, weight and norm gradients) on 512 tokens of a
# synthetic model with SmolLM-135M's shapes, as a ratio to the forward pass alone measured in
# the same run, with the fraction of the GEMM peak measured there too.
# usage: bench_backward.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR [THREADS]
set -euo pipefail
cli=$1; make=$2; models=$3; threads=${4:-2}
model=$models/smollm-135m-f32
if [ ! -f "$model/model.safetensors" ]; then
  "$make" "$model" --preset smollm-135m --dtype F32
fi
echo "== bench-backward: $model, block 0, ctx 512, $threads threads"
"$cli" bench-backward "$model" --ctx 512 --reps 3 --threads "$threads" --json
