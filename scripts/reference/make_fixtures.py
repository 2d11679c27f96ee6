#!/usr/bin/env python3
"""Golden fixtures for attnlab's model tests: a small, independent PyTorch
reference of RoPE with YaRN, grouped-query attention and MLA (naive and
absorbed), in fp64 with fixed seeds. Writes tests/fixtures/model_golden.txt.

Format (version 1), plain text so the C++ side needs no dependency:
    attnlab-fixture 1
    <name> <ndim> <d0> <d1> ...
    <values, row-major, space separated>
Inputs are rounded to 6 significant digits before use, so the C++ test reads
exactly the numbers the reference computed with.

Run:  /root/.local/share/attnlab/venv/bin/python scripts/reference/make_fixtures.py
"""
import math
import pathlib

import torch

VERSION = 1
torch.set_default_dtype(torch.float64)
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "model_golden.txt"


def rounded(t):
    return torch.tensor([float(f"{v:.6g}") for v in t.flatten().tolist()]).view(t.shape)


def get_mscale(factor, mscale):
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def yarn(dim, base, factor, orig, beta_fast, beta_slow, mscale, mscale_all_dim):
    """HF transformers' _compute_yarn_parameters plus DeepSeek's mscale split."""
    pos_freqs = base ** (torch.arange(0, dim, 2) / dim)
    extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)

    def corr(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low, high = max(math.floor(corr(beta_fast)), 0), min(math.ceil(corr(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2) - low) / (high - low)).clamp(0, 1)
    extra_factor = 1 - ramp
    inv_freq = interpolation * (1 - extra_factor) + extrapolation * extra_factor
    rot_scale = get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
    return inv_freq, rot_scale, get_mscale(factor, mscale_all_dim) ** 2


def rope(x, start, inv_freq, rot_scale):
    """Rotate-half layout: dim i pairs with dim i + E/2. x: [..., T, E]."""
    t = x.shape[-2]
    ang = torch.outer(torch.arange(start, start + t, dtype=torch.float64), inv_freq)
    cos = torch.cat([ang.cos(), ang.cos()], -1) * rot_scale
    sin = torch.cat([ang.sin(), ang.sin()], -1) * rot_scale
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def attend(q, k, v, scale):
    """q [B,H,T,E], k/v [B,H,S,*]; causal mask aligned to the end."""
    t, s = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-1, -2) * scale
    mask = torch.ones(t, s, dtype=torch.bool).tril(s - t)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1) @ v


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def main():
    torch.manual_seed(1234)
    fx = {}
    # --- RoPE with YaRN (Llama convention: temperature on cos/sin) ----------------
    E = 8
    inv, rot, soft = yarn(E, 10000.0, 4.0, 16, 32.0, 1.0, 1.0, 0.0)
    x = rounded(torch.randn(1, 1, 6, E))
    fx["rope.x"] = x
    fx["rope.out_start3"] = rope(x, 3, inv, rot)

    # --- GQA: D=8, H=4, K=2, E=4, T=5, same YaRN ------------------------------------
    D, H, K, E, T = 8, 4, 2, 4, 5
    inv, rot, soft = yarn(E, 10000.0, 4.0, 16, 32.0, 1.0, 1.0, 0.0)
    w = {n: rounded(torch.randn(o, D) * 0.3) for n, o in [("wq", H * E), ("wk", K * E), ("wv", K * E)]}
    w["wo"] = rounded(torch.randn(D, H * E) * 0.3)
    x = rounded(torch.randn(1, T, D))
    q = rope((x @ w["wq"].T).view(1, T, H, E).transpose(1, 2), 0, inv, rot)
    k = rope((x @ w["wk"].T).view(1, T, K, E).transpose(1, 2), 0, inv, rot)
    v = (x @ w["wv"].T).view(1, T, K, E).transpose(1, 2)
    k, v = k.repeat_interleave(H // K, 1), v.repeat_interleave(H // K, 1)
    o = attend(q, k, v, soft / math.sqrt(E)).transpose(1, 2).reshape(1, T, H * E) @ w["wo"].T
    for n, t in w.items():
        fx[f"gqa.{n}.weight"] = t
    fx["gqa.x"], fx["gqa.out"] = x, o

    # --- MLA: D=8, H=2, d_n=4, d_r=2, d_v=3, d_c=6, no query compression, T=5 ----------
    # DeepSeek's YaRN convention: mscale = mscale_all_dim, so cos/sin are
    # untouched and the softmax scale carries mscale^2.
    D, H, N, R, V, C, T = 8, 2, 4, 2, 3, 6, 5
    inv, rot, soft = yarn(R, 10000.0, 4.0, 16, 32.0, 1.0, 0.707, 0.707)
    w = {
        "wq": rounded(torch.randn(H * (N + R), D) * 0.3),
        "wkv_a": rounded(torch.randn(C + R, D) * 0.3),
        "kv_norm": rounded(1 + 0.1 * torch.randn(C)),
        "wkv_b": rounded(torch.randn(H * (N + V), C) * 0.3),
        "wo": rounded(torch.randn(D, H * V) * 0.3),
    }
    x = rounded(torch.randn(1, T, D))
    scale = soft / math.sqrt(N + R)  # never 1/sqrt(C + R)
    q = (x @ w["wq"].T).view(1, T, H, N + R).transpose(1, 2)
    q_nope, q_pe = q[..., :N], rope(q[..., N:], 0, inv, rot)
    kv = x @ w["wkv_a"].T
    ckv = rms(kv[..., :C], w["kv_norm"])                      # [1,T,C]
    k_pe = rope(kv[..., C:].unsqueeze(1), 0, inv, rot)        # [1,1,T,R], shared by all heads
    # naive: up-project the latent to per-head keys and values.
    up = (ckv @ w["wkv_b"].T).view(1, T, H, N + V).transpose(1, 2)
    k = torch.cat([up[..., :N], k_pe.expand(1, H, T, R)], -1)
    o_naive = attend(torch.cat([q_nope, q_pe], -1), k, up[..., N:], scale)
    # absorbed: W_UK into the query, attention over the latent, W_UV after.
    w_ukv = w["wkv_b"].view(H, N + V, C)
    q_lat = torch.einsum("bhtn,hnc->bhtc", q_nope, w_ukv[:, :N])
    scores = (torch.einsum("bhtc,bsc->bhts", q_lat, ckv) + q_pe @ k_pe.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    o_lat = torch.einsum("bhts,bsc->bhtc", torch.softmax(scores, -1), ckv)
    o_absorbed = torch.einsum("bhtc,hvc->bhtv", o_lat, w_ukv[:, N:])
    assert (o_naive - o_absorbed).abs().max() < 1e-12, "reference naive != absorbed"
    for name, o in [("naive", o_naive), ("absorbed", o_absorbed)]:
        fx[f"mla.out_{name}"] = o.transpose(1, 2).reshape(1, T, H * V) @ w["wo"].T
    for n, t in w.items():
        fx[f"mla.{n}.weight"] = t
    fx["mla.x"] = x

    with open(OUT, "w") as f:
        f.write(f"attnlab-fixture {VERSION}\n")
        for name, t in fx.items():
            f.write(f"{name} {t.dim()} {' '.join(str(d) for d in t.shape)}\n")
            f.write(" ".join(f"{v:.6g}" if name.endswith((".x", ".weight")) else f"{v:.15g}"
                             for v in t.flatten().tolist()) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(fx)} tensors)")


if __name__ == "__main__":
    main()
