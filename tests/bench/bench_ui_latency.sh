#!/usr/bin/env bash
# UI thread latency of the workbench during an analysis of a synthetic SmolLM-135M-shaped model
# (32 x 512 tokens of the C4 sample, proxy sensitivity), against the idle baseline of the same run.
# usage: bench_ui_latency.sh QL_BENCH_UI_LATENCY QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR
set -euo pipefail
bench=$1; make=$2; models=$3; shared=$4
source "$(dirname "$0")/benchmodel.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat > "$out/bench.qlproj" <<JSON
{"version": 1, "model": "$model",
 "calibration": {"file": "$calib", "samples": 32, "seqlen": 512, "sampling": "random", "seed": 0},
 "sensitivity": "proxy"}
JSON
QT_QPA_PLATFORM=offscreen "$bench" "$out/bench.qlproj"
