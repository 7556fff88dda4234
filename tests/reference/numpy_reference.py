#!/usr/bin/python3
"""Independent float64 reference for QuantLens' forward pass and perplexity protocols.

Written from the LLaMA definition (RMSNorm, rotate-half RoPE, GQA causal attention, SwiGLU),
sharing no code with QuantLens: it parses safetensors itself with numpy. Run with Debian's
python3-numpy (and python3-sentencepiece for --sp-text):

  /usr/bin/python3 tests/reference/numpy_reference.py MODEL_DIR --ids IDS_FILE \
      --protocol paper|llamacpp --ctx 512 --chunks 16 [--bos 1]
  /usr/bin/python3 tests/reference/numpy_reference.py MODEL_DIR --logits 1,2,3 --top 5

The numbers in tests/data/reference_ppl.json and tests/tst_forward.cpp were produced this way.
"""
import argparse, json, struct, sys, os
import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            raise SystemExit("unsupported dtype " + dt)
        out[name] = a.reshape(info["shape"])
    return out


class Llama:
    def __init__(self, d):
        self.cfg = json.load(open(os.path.join(d, "config.json")))
        self.w = load_safetensors(os.path.join(d, "model.safetensors"))
        c = self.cfg
        self.h = c["hidden_size"]; self.nh = c["num_attention_heads"]
        self.nkv = c.get("num_key_value_heads", self.nh); self.hd = self.h // self.nh
        self.eps = c["rms_norm_eps"]; self.theta = c.get("rope_theta", 10000.0)
        self.L = c["num_hidden_layers"]
        self.head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def norm(self, x, w):
        return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps))

    def rope(self, x, T):  # x: [heads, T, hd]
        half = self.hd // 2
        inv = 1.0 / (self.theta ** (np.arange(0, self.hd, 2) / self.hd))
        ang = np.arange(T)[:, None] * inv[None, :]
        cos, sin = np.cos(ang), np.sin(ang)
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], -1)

    def logits(self, ids):
        T = len(ids); W = self.w
        x = W["model.embed_tokens.weight"][np.array(ids)]
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for i in range(self.L):
            p = "model.layers.%d." % i
            h = self.norm(x, W[p + "input_layernorm.weight"])
            q = (h @ W[p + "self_attn.q_proj.weight"].T).reshape(T, self.nh, self.hd).transpose(1, 0, 2)
            k = (h @ W[p + "self_attn.k_proj.weight"].T).reshape(T, self.nkv, self.hd).transpose(1, 0, 2)
            v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(T, self.nkv, self.hd).transpose(1, 0, 2)
            q, k = self.rope(q, T), self.rope(k, T)
            rep = self.nh // self.nkv
            k = np.repeat(k, rep, 0); v = np.repeat(v, rep, 0)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(self.hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(T, self.nh * self.hd)
            x = x + a @ W[p + "self_attn.o_proj.weight"].T
            h = self.norm(x, W[p + "post_attention_layernorm.weight"])
            g = h @ W[p + "mlp.gate_proj.weight"].T
            u = h @ W[p + "mlp.up_proj.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * u) @ W[p + "mlp.down_proj.weight"].T
        return self.norm(x, W["model.norm.weight"]) @ self.head.T


def log_softmax(l):
    m = l.max(-1, keepdims=True)
    return l - m - np.log(np.exp(l - m).sum(-1, keepdims=True))


def ppl(model, ids, protocol, ctx, chunks, bos):
    stream = ([bos] if protocol == "llamacpp" and bos is not None else []) + list(ids)
    n = min(len(stream) // ctx, chunks)
    nll, count = 0.0, 0
    for c in range(n):
        w = stream[c * ctx:(c + 1) * ctx]
        if protocol == "llamacpp" and bos is not None:
            w[0] = bos
        first = ctx // 2 if protocol == "llamacpp" else 0
        lp = log_softmax(model.logits(w))
        for j in range(first, ctx - 1):
            nll -= lp[j, w[j + 1]]
            count += 1
    return float(np.exp(nll / count)), count, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ids")
    ap.add_argument("--protocol", default="paper")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("--bos", type=int)
    ap.add_argument("--logits")
    ap.add_argument("--top", type=int, default=5)
    a = ap.parse_args()
    m = Llama(a.model)
    if a.logits:
        ids = [int(t) for t in a.logits.split(",")]
        l = m.logits(ids)
        out = {"ids": ids, "last_logits_first8": [float(v) for v in l[-1, :8]],
               "rows": [{"pos": p, "argmax": int(l[p].argmax()), "max": float(l[p].max()),
                         "logsumexp": float(np.log(np.exp(l[p] - l[p].max()).sum()) + l[p].max())}
                        for p in range(len(ids))]}
        print(json.dumps(out))
        return
    ids = [int(t) for t in open(a.ids).read().split()]
    p, count, n = ppl(m, ids, a.protocol, a.ctx, a.chunks, a.bos)
    print(json.dumps({"ppl": p, "tokens_scored": count, "chunks": n, "protocol": a.protocol, "ctx": a.ctx}))


if __name__ == "__main__":
    main()
