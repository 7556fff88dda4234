#!/usr/bin/env bash
# UI thread latency of the workbench during an analysis of a synthetic SmolLM-135M-shaped model
# (32 x 512 tokens of the C4 sample, proxy sensitivity), against the idle baseline of the same run.
# usage: bench_ui_latency.sh QL_BENCH_UI_LATENCY QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR
set -euo pipefail
bench=$1; make=$2; models=$3; shared=$4
mkdir -p "$models"
model=$(cd "$models" && pwd)/smollm-135m-f32
calib=$shared/data/c4/c4_en_validation_sample_first1000.jsonl
if [ ! -f "$calib" ] || [ ! -f "$shared/models/stories260k/tokenizer.model" ]; then
  echo "skipped: needs $calib and the stories260k tokenizer in $shared"; exit 0
fi
[ -f "$model/model.safetensors" ] || "$make" "$model" --preset smollm-135m --dtype F32
cp "$shared/models/stories260k/tokenizer.model" "$shared/models/stories260k/tokenizer_config.json" "$model/"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat > "$out/bench.qlproj" <<JSON
{"version": 1, "model": "$model",
 "calibration": {"file": "$calib", "samples": 32, "seqlen": 512, "sampling": "random", "seed": 0},
 "sensitivity": "proxy"}
JSON
QT_QPA_PLATFORM=offscreen "$bench" "$out/bench.qlproj"
