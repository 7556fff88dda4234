#!/usr/bin/env bash
# Renders every workbench view for both shared models into docs/screenshots/ (README pictures):
# calibration on 32 random windows of 256 tokens of WikiText-2 test, full sensitivity; the plan
# editor with a mixed GPTQ plan measured on 8 quick windows of 512 tokens, and the export dialog
# previewing that plan as GGUF q4_k.
# The Pareto dock sweeps every allocator at 2.5, 3, 3.5 and 4 bits per weight; the Compare dock
# runs every method, every transform before the plan's method and hadamard+gptq on block 1's o_proj.
# usage: tests/bench/screenshots.sh build/app/quantlens ../shared docs/screenshots [VIEW ...]
set -euo pipefail
gui=$1; shared=$(cd "$2" && pwd); out=$3; shift 3
views=${*:-overview outliers heatmap depth massive sensitivity entropy weights plan export pareto compare}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for model in stories260k tinystories-656k; do
  cat > "$work/$model.qlproj" <<JSON
{"version": 1, "model": "$shared/models/$model",
 "calibration": {"file": "$shared/data/wikitext-2-raw/wiki.test.raw", "samples": 32, "seqlen": 256,
                 "sampling": "random", "seed": 0},
 "sensitivity": "full", "kl_samples": 4,
 "evaluation": {"quick_windows": 8, "quick_ctx": 512},
 "plan": {"version": 1, "name": "gptq-w4-mixed",
          "rules": [{"match": "*", "method": "gptq", "bits": 4, "sym": true, "group": 32}],
          "overrides": {"*.mlp.down_proj": {"bits": 3},
                        "model.layers.0.*": {"bits": 8},
                        "model.layers.1.self_attn.o_proj": {"channels": [{"select": "top_absmax_percent", "value": 5,
                                                                          "bits": 8, "sym": true}]}},
          "skip": ["model.layers.1.mlp.gate_proj"]}}
JSON
  for view in $views; do
    QT_QPA_PLATFORM=offscreen "$gui" --project "$work/$model.qlproj" --view "$view" --screenshot "$out/$model-$view.png"
  done
done
