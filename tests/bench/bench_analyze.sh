#!/usr/bin/env bash
# Cost of the statistics pass against a plain forward pass over the same number of tokens, peak
# memory, and the time of proxy sensitivity at 4 widths, on a synthetic SmolLM-135M-shaped
# model calibrated with 128 x 512 tokens of the C4 sample.
# usage: bench_analyze.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR [THREADS]
set -euo pipefail
cli=$1; make=$2; models=$3; shared=$4; threads=${5:-2}
source "$(dirname "$0")/benchmodel.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rss() { /usr/bin/time -f '%M %U %S' -o "$out/rss" "$@" > "$out/json"; read -r kib user sys < "$out/rss"
       echo "peak_rss_mib=$(( kib / 1024 )) cpu_seconds=$(python3 -c "print($user + $sys)")"; cat "$out/json"; }
field() { python3 -c "import json; print(json.load(open('$out/json'))['$1'])"; }
# The baseline runs before and after the statistics pass and the ratio uses their mean, so a
# slow phase of a shared machine weighs on both sides.
echo "== plain forward, 128 x 512 tokens, last-token logits (baseline measured in this run)"
rss "$cli" bench-forward "$model" --ctx 512 --chunks 128 --threads "$threads" --json
base1=$(field seconds)
echo "== statistics pass, no sensitivity"
rss "$cli" analyze "$model" --calib "$calib" --samples 128 --seqlen 512 --sensitivity none --threads "$threads" --out "$out/a.h5" --json
stats=$(field pass_seconds)
echo "== plain forward again"
rss "$cli" bench-forward "$model" --ctx 512 --chunks 128 --threads "$threads" --json | grep -E 'peak_rss|"seconds"'
base2=$(field seconds)
echo "forward_seconds=$base1,$base2 stats_pass_seconds=$stats"
echo "stats_pass_over_forward_ratio=$(python3 -c "print(round($stats / (($base1 + $base2) / 2), 3))")"
echo "== statistics pass with proxy sensitivity at 2/3/4/8 bits"
rss "$cli" analyze "$model" --calib "$calib" --samples 128 --seqlen 512 --sensitivity proxy --threads "$threads" --out "$out/b.h5" --json | grep -E 'peak_rss|seconds'
