#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UndefinedBehaviorSanitizer) and runs
# each for a fixed number of executions from seed corpora (docs/fuzzing.md).
#
#   fuzz/run.sh [RUNS] [TARGET ...]      RUNS defaults to 1000000; targets default to all
#
# Environment: QL_FUZZ_BUILD (default build-fuzz), QL_MAIN_BUILD (default build: its
# quantlens-cli writes the analysis store, run state and GGUF seeds), QL_SHARED_DIR (default
# ../shared: the shared models add real tokenizers and configs), QL_FUZZ_JOBS (targets run at
# once, default 2), QL_FUZZ_MAX_TIME (seconds per target, default 1800).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
runs=${1:-1000000}
shift || true
targets=("$@")
all=(safetensors config hftokenizer sptokenizer recipe project store runstate gguf)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
B=$(realpath -m "${QL_FUZZ_BUILD:-build-fuzz}")
main=$(realpath -m "${QL_MAIN_BUILD:-build}")
shared=$(realpath -m "${QL_SHARED_DIR:-../shared}")
jobs=${QL_FUZZ_JOBS:-2}
maxtime=${QL_FUZZ_MAX_TIME:-1800}

cmake -S "$src" -B "$B" -G Ninja -DQL_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" >/dev/null
cmake --build "$B"

# Seeds: files QuantLens reads in practice, written fresh so they match the current formats.
S=$B/seeds
rm -rf "$S" && mkdir -p "$S"
"$B/fuzz/ql-fuzz-fixture" "$S/fixture"
# Every target's seed folder, so a run of some targets writes the seeds of all without failing.
for t in "${all[@]}"; do mkdir -p "$S/$t"; done
for t in "${targets[@]}"; do mkdir -p "$B/corpus/$t" "$B/crashes"; done
cp "$S/fixture/model/model.safetensors" "$S/safetensors/" 2>/dev/null || true
cp "$S/fixture/model/config.json" "$S/config/fixture.json" 2>/dev/null || true
cp "$S/fixture/model/tokenizer.json" "$S/hftokenizer/bytelevel.json" 2>/dev/null || true
cp "$S/fixture/metaspace/tokenizer.json" "$S/hftokenizer/metaspace.json" 2>/dev/null || true
cp "$S/fixture/sentencepiece/tokenizer.model" "$S/sptokenizer/fixture.model" 2>/dev/null || true
cp resources/recipes/*.json docs/*.json "$S/recipe/" 2>/dev/null || true
if [ -d "$shared/models" ]; then
  for m in "$shared"/models/*/; do
    n=$(basename "$m")
    cp "$m/config.json" "$S/config/$n.json" 2>/dev/null || true
    cp "$m/tokenizer.json" "$S/hftokenizer/$n.json" 2>/dev/null || true
    cp "$m/tokenizer.model" "$S/sptokenizer/$n.model" 2>/dev/null || true
  done
else
  echo "note: $shared/models is absent; the config and tokenizer corpora start from the fixtures alone"
fi
cat > "$S/project/full.qlproj" <<JSON
{"version": 1, "model": "model", "calibration": {"file": "calib.txt", "samples": 8, "seqlen": 64,
 "sampling": "random", "seed": 3}, "sensitivity": "full", "kl_samples": 2, "analysis": "a.h5",
 "sensitivity_options": {"methods": ["rtn", "gptq"], "bits": [2, 4], "groups": [0, 128]},
 "evaluation": {"file": "e.txt", "quick_windows": 4, "quick_ctx": 256, "quick_compute": "fp32"},
 "plan": {"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 4}]},
 "runs": [{"name": "w4", "folder": "runs/w4", "bits_per_weight": 4.5, "quick_kl": 0.01, "quick_ppl": 12.5}]}
JSON
printf '{"version": 1, "model": "/abs/model"}' > "$S/project/minimal.qlproj"
cli=$main/app/quantlens-cli
if [ -x "$cli" ]; then
  fx=$S/fixture/model
  cat > "$S/fixture/w4-mixed.json" <<JSON
{"version": 1, "name": "mixed", "pipeline": "sequential",
 "rules": [{"match": "*.mlp.*", "method": "gptq", "bits": 3, "group": 16, "params": {"act_order": true}},
           {"match": "*", "method": "rtn", "bits": 4, "sym": true, "group": 16}]}
JSON
  "$cli" analyze "$fx" --calib README.md --samples 2 --seqlen 32 --sensitivity proxy --out "$S/store/proxy.h5" >/dev/null
  "$cli" quantize "$fx" --recipe "$S/fixture/w4-mixed.json" --calib README.md --samples 2 --seqlen 32 \
    --out "$S/fixture/run" >/dev/null
  cp "$S/fixture/run/quantized.safetensors" "$S/runstate/mixed.safetensors"
  "$cli" export "$fx" --format gguf --gguf-type f16 --out "$S/gguf/f16.gguf" >/dev/null
  "$cli" export "$fx" --format gguf --gguf-type q8_0 --run "$S/fixture/run" --out "$S/gguf/run.gguf" >/dev/null
else
  echo "note: $cli is absent (build the main tree first, README); store, runstate and gguf start from empty corpora"
fi

fuzz_one() {
  local t=$1
  local log=$B/logs/$t.log
  mkdir -p "$B/logs"
  if "$B/fuzz/fuzz_$t" -runs="$runs" -max_total_time="$maxtime" -print_final_stats=1 \
      -artifact_prefix="$B/crashes/$t-" "$B/corpus/$t" "$S/$t" >"$log" 2>&1; then
    echo "$t: $(grep -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') executions, no findings"
  else
    echo "$t: FAILED (see $log; inputs in $B/crashes/)"
    return 1
  fi
}
export -f fuzz_one
export B S runs maxtime
export LSAN_OPTIONS="suppressions=$src/fuzz/lsan.supp:print_suppressions=0"
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'fuzz_one {}'
