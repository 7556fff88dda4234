#!/usr/bin/env bash
# llama.cpp (node-llama-cpp's prebuilt CPU binary, pinned in package-lock.json) loads QuantLens's
# GGUF exports of the shared SentencePiece model and scores the same token ids as
# `quantlens-cli eval --protocol llamacpp`; prints both perplexities and fails when they
# disagree by more than the stated tolerance.
# usage: check.sh CLI SOURCE_DIR WORK_DIR SHARED_DIR
set -euo pipefail
cli=$1; src=$2; work=$3; shared=${QL_SHARED_DIR:-$4}
model="$shared/models/stories260k"
text="$shared/data/wikitext-2-raw/wiki.test.raw"
if [ ! -f "$model/config.json" ] || [ ! -f "$text" ]; then
  echo "skipped: shared model or text missing under $shared (set QL_SHARED_DIR)"; exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "node-llama-cpp needs Node.js 20 or later; this machine has $(node --version)"; exit 1
fi
mkdir -p "$work"
cp "$src/tests/llamacpp/package.json" "$src/tests/llamacpp/package-lock.json" "$src/tests/llamacpp/ppl.mjs" "$work/"
# npm install with the lock file, not npm ci: the registry serves only some of node-llama-cpp's
# optional per-platform packages, which npm ci insists on finding in the lock.
if ! cmp -s "$src/tests/llamacpp/package-lock.json" "$work/node_modules/.quantlens-lock" 2>/dev/null; then
  (cd "$work" && npm install --ignore-scripts --no-audit --no-fund > npm.log 2>&1) || { cat "$work/npm.log"; exit 1; }
  cp "$src/tests/llamacpp/package-lock.json" "$work/node_modules/.quantlens-lock"
fi
ctx=256; chunks=8
"$cli" tokenize "$model" --text "$text" --out "$work/ids.txt"
bos=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tokenizer']['bos_id'])" <("$cli" info "$model" --json))
ours=$("$cli" eval "$model" --data "$text" --ctx $ctx --chunks $chunks --protocol llamacpp --json |
       python3 -c "import json,sys; print(json.load(sys.stdin)['ppl'])")
status=0
# type and tolerance (relative): f32 carries the same weights; q8_0 is a different model whose
# perplexity only has to be close; the check then is that llama.cpp runs it at all.
for spec in f32:0.001 f16:0.002 q8_0:0.02; do
  type=${spec%%:*}; tol=${spec##*:}
  "$cli" export "$model" --format gguf --gguf-type "$type" --out "$work/m-$type.gguf" > /dev/null
  theirs=$(cd "$work" && node ppl.mjs "$work/m-$type.gguf" "$work/ids.txt" $ctx $chunks "$bos" |
           python3 -c "import json,sys; print(json.load(sys.stdin)['ppl'])")
  python3 - "$type" "$ours" "$theirs" "$tol" <<'PY' || status=1
import sys
t, ours, theirs, tol = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rel = abs(theirs - ours) / ours
print("%-5s QuantLens (fp32 model) %.4f  llama.cpp (%s GGUF) %.4f  rel. diff %.2e (tolerance %.0e)%s"
      % (t, ours, t, theirs, rel, tol, "" if rel <= tol else "  FAILED"))
sys.exit(0 if rel <= tol else 1)
PY
done
# Runs: RTN and GPTQ with 4-bit symmetric groups of 32, which q4_0 holds exactly; the GGUF carries
# the run's codes, and what the run kept in float (embeddings) or no q4_0 block holds (down_proj's
# rows of 172) is f16 (--gguf-type). llama.cpp's perplexity of the file against `eval --run`.
calib="$shared/data/tinystories/valid_hf_first1000_eot.txt" # not the scored text
[ -f "$calib" ] || calib="$text"
for method in rtn gptq; do
  cat > "$work/$method.json" <<JSON
{"version": 1, "calibration": {"samples": 32, "seqlen": 256},
 "rules": [{"match": "*", "method": "$method", "bits": 4, "sym": true, "group": 32}]}
JSON
  "$cli" quantize "$model" --recipe "$work/$method.json" --calib "$calib" --out "$work/run-$method" --force > /dev/null
  ours=$("$cli" eval "$model" --run "$work/run-$method" --data "$text" --ctx $ctx --chunks $chunks --protocol llamacpp --json |
         python3 -c "import json,sys; print(json.load(sys.stdin)['ppl'])")
  "$cli" export "$model" --run "$work/run-$method" --format gguf --gguf-type f16 --out "$work/run-$method.gguf" > "$work/export-$method.txt"
  theirs=$(cd "$work" && node ppl.mjs "$work/run-$method.gguf" "$work/ids.txt" $ctx $chunks "$bos" |
           python3 -c "import json,sys; print(json.load(sys.stdin)['ppl'])")
  python3 - "$method" "$ours" "$theirs" 0.01 <<'PY' || status=1
import sys
m, ours, theirs, tol = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rel = abs(theirs - ours) / ours
print("%-5s QuantLens (run, W4 g32) %.4f  llama.cpp (its q4_0 GGUF) %.4f  rel. diff %.2e (tolerance %.0e)%s"
      % (m, ours, theirs, rel, tol, "" if rel <= tol else "  FAILED"))
sys.exit(0 if rel <= tol else 1)
PY
done
exit $status
