#!/usr/bin/env bash
# Export throughput on the synthetic SmolLM-135M-shaped model (fp32 weights, 538 MB): for each
# format, the model's bytes divided by the command's wall time, against the speed of reading the
# same file from disk with O_DIRECT (no page cache) measured in the same run. The target: GGUF
# q4_0 at least as fast as the read. Exports read the model from the page cache (warm, as after
# any earlier command); q4_0 is also timed cold, the model's pages dropped from the cache
# (posix_fadvise DONTNEED) before each run, so that its time includes reading the disk.
# usage: bench_export.sh QUANTLENS_CLI QL_MAKE_FIXTURE MODELS_DIR SHARED_DIR
set -euo pipefail
cli=$1; make=$2; models=$3; shared=$4
source "$(dirname "$0")/benchmodel.sh"
work=$(mktemp -d "$models/export-XXXXXX")
trap 'rm -rf "$work"' EXIT
bytes=$(stat -c %s "$model/model.safetensors")
seconds() { python3 -c 'import sys,time,subprocess; t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(time.perf_counter()-t)' "$@"; }
# Disk: best of three O_DIRECT reads (falls back to a plain read where O_DIRECT is refused).
read_s=$( (for i in 1 2 3; do seconds dd if="$model/model.safetensors" of=/dev/null bs=8M iflag=direct 2>/dev/null ||
            seconds dd if="$model/model.safetensors" of=/dev/null bs=8M; done) | sort -g | head -1)
evict() { python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"; }
cached_s=$( (for i in 1 2 3; do seconds cat "$model/model.safetensors"; done) | sort -g | head -1)
python3 -c "import sys; b,s,c=map(float,sys.argv[2:5]); print('== %s: %.0f MB; reading it from disk (O_DIRECT): %.0f MB/s; from the page cache (cat): %.0f MB/s' % (sys.argv[1], b/1e6, b/1e6/s, b/1e6/c))" "$model" "$bytes" "$read_s" "$cached_s"
echo '{"version": 1, "rules": [{"match": "*", "method": "rtn", "bits": 4, "sym": true, "group": 32}]}' > "$work/rtn.json"
"$cli" quantize "$model" --recipe "$work/rtn.json" --out "$work/run" --force > /dev/null
run() { # LABEL ARGS...: best of three, as MB/s of model bytes and the ratio to the disk read
  local label=$1; shift
  local s; s=$( (for i in 1 2 3; do seconds "$cli" export "$model" "$@" --force; done) | sort -g | head -1)
  python3 -c "import sys; b,s,r=map(float,sys.argv[1:4]); print('%-34s %6.2f s  %7.0f MB/s  %.2fx the disk read' % (sys.argv[4], s, b/1e6/s, r/s))" "$bytes" "$s" "$read_s" "$label"
}
run "gguf f32" --format gguf --gguf-type f32 --out "$work/m.gguf"
run "gguf f16" --format gguf --gguf-type f16 --out "$work/m.gguf"
run "gguf q8_0" --format gguf --gguf-type q8_0 --out "$work/m.gguf"
run "gguf q4_0" --format gguf --gguf-type q4_0 --out "$work/m.gguf"
cold_s=$( (for i in 1 2 3; do evict "$model/model.safetensors"; seconds "$cli" export "$model" --format gguf --gguf-type q4_0 --out "$work/m.gguf" --force; done) | sort -g | head -1)
python3 -c "import sys; b,s,r=map(float,sys.argv[1:4]); print('%-34s %6.2f s  %7.0f MB/s  %.2fx the disk read' % ('gguf q4_0, cold (model not cached)', s, b/1e6/s, r/s))" "$bytes" "$cold_s" "$read_s"
run "gguf q4_k (576-wide rows fall back)" --format gguf --gguf-type q4_k --out "$work/m.gguf"
run "gguf q6_k" --format gguf --gguf-type q6_k --out "$work/m.gguf"
run "gguf of the W4 run (codes kept)" --format gguf --gguf-type f16 --run "$work/run" --out "$work/m.gguf"
run "fakequant of the run (F16)" --format fakequant --dtype F16 --run "$work/run" --out "$work/fq"
run "gptq safetensors of the run" --format gptq --run "$work/run" --out "$work/gptq"
run "tensor-types of the run" --format tensor-types --run "$work/run" --out "$work/types.txt"
