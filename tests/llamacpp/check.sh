#!/usr/bin/env bash
# llama.cpp (node-llama-cpp's prebuilt CPU binary, pinned in package-lock.json) loads QuantLens's
# GGUF exports and scores the same token ids as QuantLens; prints both perplexities and fails when
# they disagree by more than the stated tolerance. QuantLens is measured twice: plain `eval`
# (fp32 arithmetic on the decoded weights) and `eval X.gguf --runtime llamacpp` (llama.cpp's
# activation formats and F16 KV cache simulated).
# usage: check.sh CLI SOURCE_DIR WORK_DIR SHARED_DIR FIXTURE_TOOL
set -euo pipefail
cli=$1; src=$2; work=$3; shared=${QL_SHARED_DIR:-$4}; fixture=$5
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
bosof() { "$cli" info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['tokenizer']['bos_id'])"; }
ids="$work/ids.txt"; bos=$(bosof "$model")
ppl() { python3 -c "import json,sys; print(json.load(sys.stdin)['ppl'])"; }
status=0

# compare LABEL GGUF PLAIN_TOL RUNTIME_TOL [EVAL_ARGS...]: llama.cpp's perplexity of GGUF against
# QuantLens's plain eval (of EVAL_ARGS, default the GGUF itself) and against eval --runtime llamacpp,
# on the ids in $ids with BOS $bos.
compare() {
  local label=$1 gguf=$2 tplain=$3 truntime=$4; shift 4
  local args=("$@"); [ ${#args[@]} -gt 0 ] || args=("$gguf")
  local plain runtime theirs
  plain=$("$cli" eval "${args[@]}" --data "$text" --ctx $ctx --chunks $chunks --protocol llamacpp --json | ppl)
  runtime=$("$cli" eval "$gguf" --data "$text" --ctx $ctx --chunks $chunks --protocol llamacpp --runtime llamacpp --json | ppl)
  theirs=$(cd "$work" && node ppl.mjs "$gguf" "$ids" $ctx $chunks "$bos" | ppl)
  python3 - "$label" "$plain" "$runtime" "$theirs" "$tplain" "$truntime" <<'PY' || status=1
import sys
label = sys.argv[1]
plain, runtime, theirs, tp, tr = map(float, sys.argv[2:])
rp, rr = abs(plain / theirs - 1), abs(runtime / theirs - 1)
ok = rp <= tp and rr <= tr
print("%-26s llama.cpp %9.4f | QuantLens %9.4f (%.1e, tol %.0e) | --runtime llamacpp %9.4f (%.1e, tol %.0e)%s"
      % (label, theirs, plain, rp, tp, runtime, rr, tr, "" if ok else "  FAILED"))
sys.exit(0 if ok else 1)
PY
}

# The float model: f32 carries the same weights as the folder, f16 and q8_0 are encoded.
for type in f32 f16 q8_0; do
  "$cli" export "$model" --format gguf --gguf-type "$type" --out "$work/m-$type.gguf" > /dev/null
done
compare "stories260k f32" "$work/m-f32.gguf" 0.001 0.001 "$model"
compare "stories260k f16" "$work/m-f16.gguf" 0.002 0.002
compare "stories260k q8_0" "$work/m-q8_0.gguf" 0.01 0.003

# Runs: RTN and GPTQ with 4-bit groups of 32, which q4_0 (symmetric) and q4_1 hold exactly; the GGUF carries
# the run's codes, and what the run kept in float (embeddings) or no q4_0 block holds (down_proj's
# rows of 172) is f16 (--gguf-type). Plain is `eval --run`, the run as QuantLens made it.
calib="$shared/data/tinystories/valid_hf_first1000_eot.txt" # not the scored text
[ -f "$calib" ] || calib="$text"
# On this tiny model single windows differ by up to ±0.9 nats between llama.cpp and the
# simulation once activations are quantized (8-bit rounding flips that fp32 summation order
# decides), so 8 windows agree to about 2e-3 at best.
for spec in rtn:true:0.003 rtn:false:0.003 gptq:true:0.003 gptq:false:0.003; do
  IFS=: read -r method sym truntime <<< "$spec"
  name="$method-$([ "$sym" = true ] && echo sym || echo asym)"
  cat > "$work/$name.json" <<JSON
{"version": 1, "calibration": {"samples": 32, "seqlen": 256},
 "rules": [{"match": "*", "method": "$method", "bits": 4, "sym": $sym, "group": 32}]}
JSON
  "$cli" quantize "$model" --recipe "$work/$name.json" --calib "$calib" --out "$work/run-$name" --force > /dev/null
  "$cli" export "$model" --run "$work/run-$name" --format gguf --gguf-type f16 --out "$work/run-$name.gguf" > "$work/export-$name.txt"
  compare "stories260k $name W4 g32" "$work/run-$name.gguf" 0.01 "$truntime" "$model" --run "$work/run-$name"
done

# A mixed-type file with every K type: the shared models' rows (64, 128, 172, 384 elements) are
# no multiple of 256, so a synthetic model of the fixture generator with rows of 256 and 512 and
# stories260k's vocabulary (the same ids apply) carries them.
fix="$work/fixture-k"
rm -rf "$fix"
# Untied: the generator's embeddings (std 1) as the output would make logits of hundreds.
"$fixture" "$fix" --layers 2 --hidden 256 --ffn 512 --heads 4 --kv-heads 2 --vocab 512 --untied 2> /dev/null
cp "$model/tokenizer.model" "$model/tokenizer_config.json" "$fix/"
"$cli" export "$fix" --format gguf --gguf-type q4_k --tensor-type attn_q=q3_k --tensor-type attn_k=q2_k \
  --tensor-type attn_v=q6_k --tensor-type ffn_down=q5_k --tensor-type ffn_up=q5_1 --tensor-type token_embd=q8_0 --tensor-type output=q6_k \
  --out "$work/mixed.gguf" --json > "$work/export-mixed.json"
python3 -c "import json,sys; print('mixed-type file:', json.load(open(sys.argv[1]))['tensors_by_type'])" "$work/export-mixed.json"
compare "synthetic mixed K types" "$work/mixed.gguf" 0.01 0.003

# The second shared model: a tokenizer.json (SentencePiece-style BPE) vocabulary, exported as
# llama's; f32 and a file of five types (rows of 128 and 384 take no K type).
model656="$shared/models/tinystories-656k"
if [ -f "$model656/config.json" ]; then
  "$cli" tokenize "$model656" --text "$text" --out "$work/ids656.txt" > /dev/null
  ids="$work/ids656.txt"; bos=$(bosof "$model656")
  "$cli" export "$model656" --format gguf --gguf-type f32 --out "$work/t656-f32.gguf" > /dev/null
  "$cli" export "$model656" --format gguf --gguf-type q8_0 --tensor-type attn_v=q4_0 --tensor-type ffn_down=q5_1 \
    --tensor-type attn_k=q4_1 --tensor-type token_embd=f16 --out "$work/t656-mixed.gguf" > /dev/null
  compare "tinystories-656k f32" "$work/t656-f32.gguf" 0.001 0.001 "$model656"
  compare "tinystories-656k mixed types" "$work/t656-mixed.gguf" 0.01 0.003
fi
exit $status
