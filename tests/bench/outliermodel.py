#!/usr/bin/python3
"""Writes a copy of a LLaMA model folder whose activations have outlier channels, as real 1-8B
models do, while computing the same function: in every block a few channels of the two
RMSNorm weights are multiplied by FACTOR and the matching input columns of q/k/v (after
input_layernorm) and of gate/up (after post_attention_layernorm) are divided by it. The
inputs of those linears then carry channels FACTOR times larger than the rest, the case
activation smoothing (SmoothQuant, OmniQuant's LET) is built for; float perplexity is unchanged
up to rounding. Weights are written as F32; the other files of the folder are linked.

usage: outliermodel.py MODEL_DIR OUT_DIR [--factor 30] [--channels 3] [--seed 0]
"""
import argparse, json, os, struct, sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from numpy_reference import load_safetensors  # noqa: E402  (F32, F16 and BF16 to float64)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, v in tensors.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--factor", type=float, default=30.0)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    files = sorted(f for f in os.listdir(a.model) if f.endswith(".safetensors"))
    if not files:
        raise SystemExit("%s: no .safetensors weights" % a.model)
    t = {}
    for f in files:
        t.update({k: v.copy() for k, v in load_safetensors(os.path.join(a.model, f)).items()})
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    hidden, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    channels = np.random.default_rng(a.seed).choice(hidden, a.channels, replace=False)
    for i in range(layers):
        pre = "model.layers.%d." % i
        for norm, linears in (("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
                              ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj"))):
            t[pre + norm + ".weight"][channels] *= a.factor
            for lin in linears:
                t[pre + lin + ".weight"][:, channels] /= a.factor
    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), t)
    for f in os.listdir(a.model):
        if f.endswith(".safetensors") or f.endswith(".safetensors.index.json"):
            continue
        dst = os.path.join(a.out, f)
        if not os.path.exists(dst):
            os.symlink(os.path.abspath(os.path.join(a.model, f)), dst)
    print("%s: channels %s of both norms x%g in %d blocks" % (a.out, sorted(channels.tolist()), a.factor, layers))


if __name__ == "__main__":
    main()
