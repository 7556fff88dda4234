#!/usr/bin/env bash
# Renders every workbench view for both shared models into docs/screenshots/ (README pictures):
# calibration on 32 random windows of 256 tokens of WikiText-2 test, full sensitivity.
# usage: tests/bench/screenshots.sh build/app/quantlens ../shared docs/screenshots
set -euo pipefail
gui=$1; shared=$(cd "$2" && pwd); out=$3
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for model in stories260k tinystories-656k; do
  cat > "$work/$model.qlproj" <<JSON
{"version": 1, "model": "$shared/models/$model",
 "calibration": {"file": "$shared/data/wikitext-2-raw/wiki.test.raw", "samples": 32, "seqlen": 256,
                 "sampling": "random", "seed": 0},
 "sensitivity": "full", "kl_samples": 4}
JSON
  for view in overview outliers heatmap depth massive sensitivity entropy weights; do
    QT_QPA_PLATFORM=offscreen "$gui" --project "$work/$model.qlproj" --view "$view" --screenshot "$out/$model-$view.png"
  done
done
