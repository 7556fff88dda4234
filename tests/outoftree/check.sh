#!/usr/bin/env bash
# Installs the SDK from this build, builds the out-of-tree plugin project against it, and checks
# that the CLI discovers and runs its method and refuses the module with another apiVersion.
# usage: check.sh BUILD_DIR SOURCE_DIR QL_MAKE_FIXTURE
set -euo pipefail
build=$1; src=$2; make=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model="$work/model"
"$make" "$model" --preset tiny > /dev/null
cmake --install "$build" --prefix "$work/sdk" > "$work/install.log"
cmake -S "$src/tests/outoftree" -B "$work/plugin" -G Ninja -DCMAKE_PREFIX_PATH="$work/sdk" > "$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/plugin" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
cli="$work/sdk/bin/quantlens-cli"   # the installed CLI, as a user would run it
QL_PLUGIN_PATH="$work/plugin/plugins" "$cli" plugins --json > "$work/plugins.json"
python3 - "$work/plugins.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ids = {m["id"]: m for m in j["methods"]}
assert "halfstep" in ids, "out-of-tree method not discovered: %s" % sorted(ids)
assert ids["halfstep"]["parameters"][0]["name"] == "shrink"
for builtin in ("rtn", "gptq", "pbllm", "hadamard", "smoothquant"):
    assert builtin in ids, "installed built-in %s missing" % builtin
bad = [p for p in j["problems"] if "futureapi" in p]
assert bad and "apiVersion 4, this QuantLens supports 3; not loaded" in bad[0], j["problems"]
print("discovered halfstep; refused:", bad[0])
PY
cat > "$work/recipe.json" <<'JSON'
{"version": 1, "rules": [{"match": "*", "method": "halfstep", "bits": 8, "sym": true, "params": {"shrink": 0.9}}]}
JSON
QL_PLUGIN_PATH="$work/plugin/plugins" "$cli" quantize "$model" --recipe "$work/recipe.json" --out "$work/run" --json > "$work/run.json"
python3 - "$work/run.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
layers = [l for l in j["layers"] if l["method"] == "halfstep"]
assert len(layers) == len(j["layers"]) and layers, j["layers"][:2]
assert all(0 < l["weight_rel_error"] < 0.05 for l in layers), [l["weight_rel_error"] for l in layers]
print("quantized %d layers with the out-of-tree method, %.3f bits per weight" % (len(layers), j["bits_per_weight"]))
PY
# The window's parameter form shows the out-of-tree method's declared parameters, no widget code.
QL_PLUGIN_PATH="$work/plugin/plugins" QL_FORM_METHOD=halfstep QT_QPA_PLATFORM=offscreen \
  "$build/tests/tst_guiplan" paramFormFromDeclarations > "$work/form.log" 2>&1 ||
  { cat "$work/form.log"; exit 1; }
echo "the plan editor's parameter form shows halfstep's parameters"
