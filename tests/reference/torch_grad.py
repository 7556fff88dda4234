#!/usr/bin/python3
"""Independent gradients for QuantLens' backward pass, by torch autograd in float64.

Only forward functions are written here (from the LLaMA definition and OmniQuant's and AutoRound's quantizers and transformation);
torch derives every gradient. Run with Debian's python3-torch:

  /usr/bin/python3 tests/reference/torch_grad.py DIR block|head|clip|omniquant|roundq|autoround|let

DIR holds index.json ({"config": {...}, "tensors": {name: shape}}) and <name>.bin, raw
little-endian float32 in row-major order. The script writes ref_<name>.bin and ref_index.json.
"""
import json, os, sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def load(d):
    index = json.load(open(os.path.join(d, "index.json")))
    t = {}
    for name, shape in index["tensors"].items():
        a = np.fromfile(os.path.join(d, name + ".bin"), dtype="<f4").astype(np.float64)
        t[name] = torch.tensor(a.reshape(shape))
    return index["config"], t


def save(d, out):
    shapes = {}
    for name, v in out.items():
        a = v.detach().numpy().astype("<f8")
        a.tofile(os.path.join(d, "ref_" + name + ".bin"))
        shapes[name] = list(a.shape)
    json.dump(shapes, open(os.path.join(d, "ref_index.json"), "w"))


def rms_norm(x, w, eps):  # x: tokens × features
    return w * x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)


def rope(x, heads, hd, theta):  # x: tokens × heads·hd, rotate-half
    n = x.shape[0]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = (torch.arange(n, dtype=torch.float32)[:, None] * inv[None, :]).double()
    cos, sin = torch.cos(ang).repeat(1, 2), torch.sin(ang).repeat(1, 2)
    x = x.view(n, heads, hd)
    rot = torch.cat([-x[..., hd // 2:], x[..., : hd // 2]], -1)
    return (x * cos[:, None, :] + rot * sin[:, None, :]).reshape(n, heads * hd)


NAMES = ["q", "k", "v", "o", "gate", "up", "down"]


def round_ste(x):
    return x + (x.round() - x).detach()


def act_quant(x, bits, symmetric=False):
    """Per-token fake quantization of a linear's input (tokens × features) as OmniQuant's
    UniformAffineQuantizer differentiates it: round_ste, the zero point rounded (a constant), the
    scale from the token's extrema (an asymmetric range widened to contain 0)."""
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        s = x.abs().amax(-1, keepdim=True) / qmax
        return (round_ste(x / s).clamp(-qmax - 1, qmax)) * s
    lo = x.amin(-1, keepdim=True).clamp(max=0)
    hi = x.amax(-1, keepdim=True).clamp(min=0)
    qmax = 2 ** bits - 1
    s = (hi - lo) / qmax
    z = torch.round(-lo / s).detach()
    return ((round_ste(x / s) + z).clamp(0, qmax) - z) * s


def block_forward(c, t, P, x, outputs=None, act_bits=0):
    """The decoder block on x (tokens × hidden) with the parameters in P; outputs, when given,
    receives every linear's output with its gradient retained; act_bits > 0 fake-quantizes
    every linear's input."""
    n, H, KV, hd, eps = x.shape[0], c["heads"], c["kv_heads"], c["head_dim"], c["eps"]

    def lin(k, inp):
        if act_bits:
            inp = act_quant(inp, act_bits)
        y = inp @ P[k].T
        y = y + P["b_" + k] if "b_" + k in P else y
        if outputs is not None:
            y.retain_grad()
            outputs[k] = y
        return y

    def quantized(value, name):  # a fake-quantized input: the given value, the quantizer's gradient
        if name not in t:
            return value
        q = act_quant(value, c["mlp_in_bits"], c["mlp_in_symmetric"])
        return q + (t[name].T - q).detach()

    h = rms_norm(x, P["attn_norm"], eps)
    q = rope(lin("q", h), H, hd, c["theta"]).view(n, H, hd).transpose(0, 1)
    k = rope(lin("k", h), KV, hd, c["theta"]).view(n, KV, hd).transpose(0, 1)
    v = lin("v", h).view(n, KV, hd).transpose(0, 1)
    k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
    s = q @ k.transpose(1, 2) / hd ** 0.5
    s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
    a = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(n, H * hd)
    mid = x + lin("o", a)
    h2 = quantized(rms_norm(mid, P["mlp_norm"], eps), "mlp_in_quant")
    act = torch.nn.functional.silu(lin("gate", h2)) * lin("up", h2)
    if "rotation" in t:
        act = act @ t["rotation"].T
    return mid + lin("down", act)


def block(c, t):
    P = {k: t[k].clone().requires_grad_() for k in ["x", "attn_norm", "mlp_norm"] + NAMES}
    P.update({"b_" + k: t["b_" + k].clone().requires_grad_() for k in NAMES if "b_" + k in t})
    outputs = {}
    y = block_forward(c, t, P, P["x"].T, outputs)
    (y * t["dy"].T).sum().backward()
    out = {"y": y.T}
    out.update({"d_" + k: v.grad for k, v in P.items()})
    out.update({"out_sq_" + k: (y.grad ** 2).sum(0) for k, y in outputs.items()})
    return out


def head(c, t):
    x = t["x"].clone().requires_grad_()
    norm = t["norm"].clone().requires_grad_()
    w = t["head"].clone().requires_grad_()
    logits = rms_norm(x.T, norm, c["eps"]) @ w.T
    targets = torch.tensor(np.rint(t["targets"].numpy()).astype(np.int64))
    loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-1)
    loss.backward()
    return {"loss": loss.reshape(1), "d_x": x.grad, "d_norm": norm.grad, "d_head": w.grad}


def grouped(w, gs):
    """w in rows of gs inputs, a partial last group padded with zeros (as both references do)."""
    pad = (-w.shape[1]) % gs
    return torch.nn.functional.pad(w, (0, pad)).reshape(-1, gs) if pad else w.reshape(-1, gs)


def ungrouped(q, rows, cols):
    return q.reshape(rows, -1)[:, :cols]


def lwc(w, gamma, beta, bits, gs, symmetric, detach_range=True):
    """OmniQuant's learnable weight clipping of w in groups of gs inputs."""
    rows, cols = w.shape
    x = grouped(w, gs)
    r = x.detach() if detach_range else x
    xmax = torch.sigmoid(gamma.reshape(-1, 1)) * r.amax(-1, keepdim=True)
    xmin = torch.sigmoid(beta.reshape(-1, 1)) * r.amin(-1, keepdim=True)
    if symmetric:
        half = 2 ** (bits - 1) - 1
        scale = (torch.max(xmax.abs(), xmin.abs()) / half).clamp(min=1e-5, max=1e4)
        zero = half * torch.ones_like(scale)
    else:
        scale = ((xmax - xmin) / (2 ** bits - 1)).clamp(min=1e-5, max=1e4)
        zero = -xmin / scale
    zero = zero.clamp(min=-1e4, max=1e4).round()
    v = x / scale
    q = (v + (v.round() - v).detach() + zero).clamp(0, 2 ** bits - 1)
    return ungrouped((q - zero) * scale, rows, cols)


def clip(c, t):
    w = t["w"].clone().requires_grad_()
    gamma = t["gamma"].clone().requires_grad_()
    beta = t["beta"].clone().requires_grad_()
    # The group extrema are constants to the weight's gradient (held fixed).
    wq = lwc(w, gamma, beta, c["bits"], c["group"], c["symmetric"])
    (wq * t["d_out"]).sum().backward()
    return {"wq": wq, "d_gamma": gamma.grad, "d_beta": beta.grad, "d_w": w.grad}


def omniquant(c, t):
    """OmniQuant's LWC training of one block: AdamW on MSE(quantized block(input), target),
    one step per window in order, for the given epochs."""
    gs, bits, act_bits = c["group"], c["bits"], c.get("act_bits", 0)
    params = {}
    for k in NAMES:
        g = torch.full((t[k].shape[0], -(-t[k].shape[1] // gs)), c["init"], requires_grad=True)
        params[k] = (g, torch.full_like(g, c["init"]).requires_grad_())
    groups = [{"params": [p for pair in params.values() for p in pair], "lr": c["lr"]}]
    S = {}
    if c.get("let"):  # the scales start where the caller's s_* say; truncated before every use
        S = {n: t["s_" + n].reshape(-1).clone().requires_grad_() for n in LET if "s_" + n in t}
        groups.insert(0, {"params": list(S.values()), "lr": c["let_lr"]})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    base = {k: t[k] for k in ["attn_norm", "mlp_norm"] + NAMES + ["b_" + k for k in NAMES if "b_" + k in t]}
    # --aug_loss: the float block (no quantization at all) on the quantized stream's input.
    aug = [block_forward(c, t, base, t["x%d" % w].T).detach() for w in range(c["windows"])] if c.get("aug") else []
    losses = []
    for epoch in range(c["epochs"]):
        total = 0.0
        for w in range(c["windows"]):
            if S:
                with torch.no_grad():
                    for v in S.values():
                        small = v.abs() < 1e-2
                        v[small] = torch.sign(v[small]) * 1e-2
                P = let_transform(c, t, S)
            else:
                P = dict(base)
            for k in NAMES:
                P[k] = lwc(P[k], params[k][0], params[k][1], bits, gs, False, detach_range=not S)
            y = block_forward(c, t, P, t["x%d" % w].T, act_bits=act_bits)
            loss = torch.nn.functional.mse_loss(y, t["y%d" % w].T)
            if aug:
                loss = loss + torch.nn.functional.mse_loss(y, aug[w])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / c["windows"])
    out = {"epoch_loss": torch.tensor(losses)}
    for k in NAMES:
        out["gamma_" + k], out["beta_" + k] = params[k][0].detach(), params[k][1].detach()
    for n, v in S.items():
        out["s_" + n] = v.detach()
    return out


LET = ["qkv", "fc1", "out", "qk"]


def let_transform(c, t, S):
    """OmniQuant's LET, scale only, on the block's weights: qkv and fc1 fold into the norms,
    out sits between v's rows and o's columns of every head reading that kv head, qk between
    q's and k's rows with one scale per rotary pair (d, d + head_dim/2) of each kv head."""
    H, KV, hd = c["heads"], c["kv_heads"], c["head_dim"]
    g = H // KV
    qk = S["qk"] if "qk" in S else torch.ones(KV * hd // 2)
    qk_k = torch.cat([qk.view(KV, hd // 2)] * 2, -1).reshape(-1)
    qk_q = qk_k.view(KV, hd).repeat_interleave(g, 0).reshape(-1)
    out_o = S["out"].view(KV, hd).repeat_interleave(g, 0).reshape(-1)
    P = {"attn_norm": t["attn_norm"] / S["qkv"], "mlp_norm": t["mlp_norm"] / S["fc1"],
         "q": t["q"] * S["qkv"] / qk_q[:, None], "k": t["k"] * S["qkv"] * qk_k[:, None],
         "v": t["v"] * S["qkv"] / S["out"][:, None], "o": t["o"] * out_o,
         "gate": t["gate"] * S["fc1"], "up": t["up"] * S["fc1"], "down": t["down"]}
    rows = {"q": 1 / qk_q, "k": qk_k, "v": 1 / S["out"]}
    for k in NAMES:
        if "b_" + k in t:
            P["b_" + k] = t["b_" + k] * rows[k] if k in rows else t["b_" + k]
    return P


def let(c, t):
    """Gradients of Σ y·dy for a block under LET and learnable clipping of every linear (the
    range of each group follows the transformed weight) with per-token activation quantization."""
    S = {n: t["s_" + n].reshape(-1).clone().requires_grad_() for n in LET if "s_" + n in t}
    G = {k: (t["gamma_" + k].clone().requires_grad_(), t["beta_" + k].clone().requires_grad_()) for k in NAMES}
    P = let_transform(c, t, S)
    for k in NAMES:
        P[k] = lwc(P[k], G[k][0], G[k][1], c["bits"], c["group"], False, detach_range=False)
    y = block_forward(c, t, P, t["x"].T, act_bits=c["act_bits"])
    (y * t["dy"].T).sum().backward()
    out = {"y": y.T}
    out.update({"d_s_" + n: v.grad for n, v in S.items()})
    for k in NAMES:
        out["d_gamma_" + k], out["d_beta_" + k] = G[k][0].grad, G[k][1].grad
    return out


def autoround_q(w, v, mn, mx, bits, gs):
    """AutoRound's asymmetric quantize-dequantize of w in groups of gs inputs, with rounding
    offsets v and min/max factors mn, mx (one per group); the scale is an fp16 value."""
    rows, cols = w.shape
    x = grouped(w, gs)
    lo = x.amin(-1).clamp(max=0) * mn.reshape(-1)
    hi = x.amax(-1).clamp(min=0) * mx.reshape(-1)
    maxq = 2 ** bits - 1
    # fp16 scale, floored at fp16(1e-5) (the same as clamping in fp16, which CPU torch lacks).
    # The cast passes the gradient unrounded: in the reference the scale's gradient is an fp16
    # tensor, rounded to fp16 before it reaches the factors; QuantLens keeps it in fp32 (sign
    # descent uses only its sign), and this reference checks that choice.
    floor = torch.tensor(1e-5).to(torch.float16).to(torch.float64).item()
    raw = (hi - lo) / maxq
    scale = (raw + (raw.to(torch.float16).to(torch.float64) - raw).detach()).clamp(min=floor)
    zero = round_ste(-lo / scale)
    q = (round_ste(x / scale[:, None] + grouped(v, gs)) + zero[:, None]).clamp(0, maxq)
    return ungrouped(scale[:, None] * (q - zero[:, None]), rows, cols)


def roundq(c, t):
    v = t["v"].clone().requires_grad_()
    mn = t["min"].clone().requires_grad_()
    mx = t["max"].clone().requires_grad_()
    wq = autoround_q(t["w"], v, mn, mx, c["bits"], c["group"])
    (wq * t["d_out"]).sum().backward()
    return {"wq": wq, "d_v": v.grad, "d_min": mn.grad, "d_max": mx.grad}


def autoround(c, t):
    """AutoRound's training of one block: each iteration, MSE over all windows' outputs, then
    p -= lr·(1 − i/iters)·sign(grad) (torch's LinearLR from 1 to 0) and the factors clamped to
    [0, 1]; returns the parameters the last iteration used (keep-last mode) and every loss."""
    gs, bits, iters, lr = c["group"], c["bits"], c["iters"], c["lr"]
    params = {}
    for k in NAMES:
        rows, cols = t[k].shape
        params[k] = (torch.zeros(rows, cols, requires_grad=True),
                     torch.ones(rows, -(-cols // gs), requires_grad=True),
                     torch.ones(rows, -(-cols // gs), requires_grad=True))
    base = {k: t[k] for k in ["attn_norm", "mlp_norm"] + ["b_" + k for k in NAMES if "b_" + k in t]}
    target = torch.cat([t["y%d" % w].T for w in range(c["windows"])])
    losses, kept = [], None
    for i in range(iters):
        P = dict(base)
        for k in NAMES:
            P[k] = autoround_q(t[k], *params[k], bits, gs)
        y = torch.cat([block_forward(c, t, P, t["x%d" % w].T) for w in range(c["windows"])])
        loss = torch.nn.functional.mse_loss(y, target)
        for pr in params.values():
            for p in pr:
                p.grad = None
        loss.backward()
        losses.append(loss.item())
        if i == iters - 1:
            kept = {k: [p.detach().clone() for p in pr] for k, pr in params.items()}
        step = lr * (1.0 - i / iters)
        with torch.no_grad():
            for v, mn, mx in params.values():
                for p in (v, mn, mx):
                    p -= step * p.grad.sign()
                mn.clamp_(0, 1)
                mx.clamp_(0, 1)
    out = {"iter_loss": torch.tensor(losses)}
    for k in NAMES:
        out["v_" + k], out["min_" + k], out["max_" + k] = kept[k]
    return out


if __name__ == "__main__":
    d, mode = sys.argv[1], sys.argv[2]
    config, tensors = load(d)
    save(d, {"block": block, "head": head, "clip": clip, "omniquant": omniquant, "roundq": roundq,
             "autoround": autoround, "let": let}[mode](config, tensors))
