#!/usr/bin/env bash
# The memory guard's estimate against the measured peak, on the synthetic SmolLM-135M-shaped model
# (fp32, mapped in place): each command runs with --json, which carries the estimate it checked
# before starting; its anonymous resident memory (RssAnon, the part that must fit: the mapped
# weights are file-backed) is sampled every 5 ms. The estimate should be at or above the measured
# peak (a guard that under-estimates lets a job be killed) and not far above it (one that
# over-estimates refuses jobs that fit).
# usage: bench_memory.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR RECIPES_DIR
set -euo pipefail
cli=$1; make=$2; models=$3; shared=$4; recipes=$5
source "$(dirname "$0")/benchmodel.sh"
work=$(mktemp -d "$models/memory-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo '{"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 4, "sym": true, "group": 32}]}' > "$work/rtn.json"
measure() { # LABEL ARGS...: the command's estimate, its sampled peak RssAnon, and their ratio
  python3 - "$@" <<'PY'
import json, subprocess, sys, time
label, args = sys.argv[1], sys.argv[2:]
p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
peak = 0
while p.poll() is None:
    try:
        with open("/proc/%d/status" % p.pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
    except OSError:
        pass
    time.sleep(0.005)
out = p.stdout.read()
if p.returncode != 0:
    print("%-40s failed (exit %d)" % (label, p.returncode)); sys.exit(0)
est = json.loads(out)["memory"]["estimated_peak_bytes"]
print("%-40s estimate %8.0f MiB  measured %8.0f MiB  estimate/measured %.2f" % (label, est / 2**20, peak / 2**20, est / max(peak, 1)))
PY
}
echo "== $model, RssAnon sampled every 5 ms"
measure "analyze 32 x 512 (proxy)" "$cli" analyze "$model" --calib "$calib" --samples 32 --seqlen 512 --out "$work/a.h5" --force --json
measure "analyze 128 x 512 (proxy)" "$cli" analyze "$model" --calib "$calib" --samples 128 --seqlen 512 --out "$work/a.h5" --force --json
measure "quantize rtn w4" "$cli" quantize "$model" --recipe "$work/rtn.json" --out "$work/rtn" --force --json
measure "quantize gptq w4, 32 x 512" "$cli" quantize "$model" --recipe "$recipes/w4-gptq-g128.json" --calib "$calib" --samples 32 --seqlen 512 --out "$work/gptq" --force --json
measure "eval ctx 512, 16 windows" "$cli" eval "$model" --data "$calib" --ctx 512 --chunks 16 --json
measure "eval --recipe rtn, ctx 512, 16 windows" "$cli" eval "$model" --data "$calib" --ctx 512 --chunks 16 --recipe "$work/rtn.json" --json
measure "export gguf q4_0" "$cli" export "$model" --format gguf --gguf-type q4_0 --out "$work/m.gguf" --force --json
