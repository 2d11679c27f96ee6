#!/usr/bin/env python3
"""Golden fixtures for GTA, GLA and TPA: an independent PyTorch reference in
fp64 with fixed seeds, written from the papers and their reference code
(Dao-AILab/grouped-latent-attention modeling_llama_GTA.py / modeling_llama_GLA.py;
tensorgi/TPA model/T6.py, model/T6_infer.py, decode/flashtpa_decode_torch.py),
not from attnlab's C++. The spec with citations is in the attnlab notes
(variants_spec.md). Writes tests/fixtures/variants_golden.txt in the format of
make_fixtures.py (version 1):
    attnlab-fixture 1
    <name> <ndim> <d0> <d1> ...
    <values, row-major, space separated>
Inputs and weights are rounded to 6 significant digits before use.

Shapes (all projections bias-free, weight [out, in]); T = 6, plain RoPE with
theta = 100 in attnlab's rotate-half layout, inv_freq theta^(-2i/W) over the
rotated width W:
  D = 24, H = 4, E = 16 (head dim set explicitly, H*E != D)
  gta:   K = 2 groups, rope_dim d_r = E/2 = 8.
         wq [H*E, D], wkv [K*E, D], wk_rope [d_r, D], wo [D, H*E].
         key_g = [kv_g[:E-d_r], rope(k_rope)], value_g = kv_g,
         q_h = [q_h[:E-d_r], rope(q_h[E-d_r:])], head h uses group h // (H/K),
         scale 1/sqrt(E). Cache K*E + d_r.
  gla:   h_c = 2, d_c = 12, d_n = 8, d_r = 8, d_v = 6, q_rank 0 (wq [H*(d_n+d_r), D]).
  gla_q: same with q_rank d_q = 10 (wq_a [d_q, D], q_norm [d_q], wq_b [H*(d_n+d_r), d_q]).
         wkv_a [h_c*d_c + d_r, D] (latent heads in order, then the shared rope key),
         kv_norm [h_c*d_c] (RMSNorm eps 1e-6 over each d_c slice separately),
         wkv_b [H*(d_n+d_v), d_c] (latent g -> heads g*H/h_c.., head-major,
         [d_n key, d_v value] per head), wo [D, H*d_v]. Scale 1/sqrt(d_n+d_r).
         Cache h_c*d_c + d_r.
  tpa:   R_q = 3, R_k = 2, R_v = 2. wa_q [H*R_q, D] (output index h*R_q + r),
         wb_q [R_q*E, D] (r*E + e), wa_k, wb_k, wa_v, wb_v likewise, wo [D, H*E].
         q = (1/R_q) A_q B_q with RoPE on B_q and B_k (not B_v), scale 1/sqrt(E).
         Cache (R_k + R_v)(H + E).
Per variant v: v.x [1,6,D], v.<param>.weight, v.out [1,6,D] (positions 0..5),
v.out_start3 [1,6,D] (positions 3..8, no cache, causal).

Each variant also has a decode from its compressed cache (GLA absorbed per
latent group, TPA from the factors) that must match the full forward at every
position to 1e-12, and the cache width per token must equal the paper's.

Run:  /root/.local/share/attnlab/venv/bin/python scripts/reference/make_variant_fixtures.py
"""
import math
import pathlib

import torch

VERSION = 1
torch.set_default_dtype(torch.float64)
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "variants_golden.txt"

THETA = 100.0
T = 6
D, H, E = 24, 4, 16
GTA = dict(K=2, d_r=8)
GLA = dict(h_c=2, d_c=12, d_n=8, d_r=8, d_v=6)
TPA = dict(R_q=3, R_k=2, R_v=2)
DECODE_TOL = 1e-12


def rounded(t):
    return torch.tensor([float(f"{v:.6g}") for v in t.flatten().tolist()]).view(t.shape)


def randw(out_features, in_features):
    return rounded(torch.randn(out_features, in_features) * 0.3)


def inv_freq(width):
    return 1.0 / THETA ** (torch.arange(0, width, 2) / width)


def rope(x, positions):
    """Rotate-half: dim i pairs with i + W/2. x [..., T, W], positions [T]."""
    w = x.shape[-1]
    ang = torch.outer(positions.to(torch.float64), inv_freq(w))
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def positions(start, t):
    return torch.arange(start, start + t)


def attend(q, k, v, scale):
    """q [B,H,T,*], k/v [B,H,S,*]; causal mask aligned to the end (S = T here)."""
    t, s = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-1, -2) * scale
    mask = torch.ones(t, s, dtype=torch.bool).tril(s - t)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1) @ v


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


# ---------------------------------------------------------------- GTA ------------
def gta_weights():
    K, d_r = GTA["K"], GTA["d_r"]
    return {"wq": randw(H * E, D), "wkv": randw(K * E, D), "wk_rope": randw(d_r, D), "wo": randw(D, H * E)}


def gta_cache(w, x, start):
    """Per token: kv [K, E] and the rotated shared rope key [d_r]."""
    K, d_r = GTA["K"], GTA["d_r"]
    b, t, _ = x.shape
    kv = (x @ w["wkv"].T).view(b, t, K, E)
    krope = rope(x @ w["wk_rope"].T, positions(start, t))  # [B,T,d_r]
    return kv, krope


def gta_query(w, x, start):
    d_r = GTA["d_r"]
    b, t, _ = x.shape
    q = (x @ w["wq"].T).view(b, t, H, E).transpose(1, 2)  # [B,H,T,E]
    return torch.cat([q[..., :E - d_r], rope(q[..., E - d_r:], positions(start, t))], -1)


def gta_forward(w, x, start=0):
    K, d_r = GTA["K"], GTA["d_r"]
    b, t, _ = x.shape
    q = gta_query(w, x, start)
    kv, krope = gta_cache(w, x, start)
    key = torch.cat([kv[..., :E - d_r], krope.unsqueeze(2).expand(b, t, K, d_r)], -1)  # [B,T,K,E]
    key = key.transpose(1, 2).repeat_interleave(H // K, 1)
    val = kv.transpose(1, 2).repeat_interleave(H // K, 1)
    o = attend(q, key, val, 1 / math.sqrt(E))
    return o.transpose(1, 2).reshape(b, t, H * E) @ w["wo"].T


def gta_decode(w, x, start, i):
    """Output of token i from the cache of tokens 0..i, head by head."""
    K, d_r = GTA["K"], GTA["d_r"]
    kv, krope = gta_cache(w, x[:, : i + 1], start)
    q = gta_query(w, x[:, i : i + 1], start + i)[0, :, 0]  # [H,E]
    heads = []
    for h in range(H):
        g = h // (H // K)
        key = torch.cat([kv[0, :, g, : E - d_r], krope[0]], -1)  # [S,E]
        p = torch.softmax(key @ q[h] / math.sqrt(E), -1)
        heads.append(p @ kv[0, :, g])
    return torch.cat(heads) @ w["wo"].T


def gta_cache_dict(w, x, start):
    kv, krope = gta_cache(w, x, start)
    return {"kv": kv, "k_rope": krope}


def gta_cache_width(w):
    kv, krope = gta_cache(w, torch.zeros(1, 1, D), 0)
    return kv[0, 0].numel() + krope[0, 0].numel()


# ---------------------------------------------------------------- GLA ------------
def gla_weights(q_rank):
    h_c, d_c, d_n, d_r, d_v = (GLA[k] for k in ("h_c", "d_c", "d_n", "d_r", "d_v"))
    w = {}
    if q_rank == 0:
        w["wq"] = randw(H * (d_n + d_r), D)
    else:
        w["wq_a"] = randw(q_rank, D)
        w["q_norm"] = rounded(1 + 0.1 * torch.randn(q_rank))
        w["wq_b"] = randw(H * (d_n + d_r), q_rank)
    w["wkv_a"] = randw(h_c * d_c + d_r, D)
    w["kv_norm"] = rounded(1 + 0.1 * torch.randn(h_c * d_c))
    w["wkv_b"] = randw(H * (d_n + d_v), d_c)
    w["wo"] = randw(D, H * d_v)
    return w


def gla_query(w, x, start):
    d_n, d_r = GLA["d_n"], GLA["d_r"]
    b, t, _ = x.shape
    q = x @ w["wq"].T if "wq" in w else rms(x @ w["wq_a"].T, w["q_norm"]) @ w["wq_b"].T
    q = q.view(b, t, H, d_n + d_r).transpose(1, 2)
    return q[..., :d_n], rope(q[..., d_n:], positions(start, t))  # [B,H,T,d_n], [B,H,T,d_r]


def gla_cache(w, x, start):
    """Per token: normed latent [h_c, d_c] (each latent head normed on its own) and rotated k_pe [d_r]."""
    h_c, d_c = GLA["h_c"], GLA["d_c"]
    b, t, _ = x.shape
    a = x @ w["wkv_a"].T
    lat = rms(a[..., : h_c * d_c].view(b, t, h_c, d_c), w["kv_norm"].view(h_c, d_c))
    return lat, rope(a[..., h_c * d_c:], positions(start, t))


def gla_forward(w, x, start=0):
    h_c, d_c, d_n, d_r, d_v = (GLA[k] for k in ("h_c", "d_c", "d_n", "d_r", "d_v"))
    G = H // h_c
    b, t, _ = x.shape
    q_nope, q_pe = gla_query(w, x, start)
    lat, k_pe = gla_cache(w, x, start)
    wb = w["wkv_b"].view(h_c, G * (d_n + d_v), d_c)
    up = torch.einsum("btgc,goc->btgo", lat, wb).reshape(b, t, H, d_n + d_v).transpose(1, 2)
    k = torch.cat([up[..., :d_n], k_pe.unsqueeze(1).expand(b, H, t, d_r)], -1)
    q = torch.cat([q_nope, q_pe], -1)
    o = attend(q, k, up[..., d_n:], 1 / math.sqrt(d_n + d_r))
    return o.transpose(1, 2).reshape(b, t, H * d_v) @ w["wo"].T


def gla_decode(w, x, start, i):
    """Absorbed decode of token i from the latent cache of tokens 0..i:
    W_UK folded into the query, scores against the cached latent, W_UV after."""
    h_c, d_c, d_n, d_r, d_v = (GLA[k] for k in ("h_c", "d_c", "d_n", "d_r", "d_v"))
    G = H // h_c
    lat, k_pe = gla_cache(w, x[:, : i + 1], start)  # [1,S,h_c,d_c], [1,S,d_r]
    q_nope, q_pe = gla_query(w, x[:, i : i + 1], start + i)
    wb = w["wkv_b"].view(H, d_n + d_v, d_c)
    heads = []
    for h in range(H):
        g = h // G
        w_uk, w_uv = wb[h, :d_n], wb[h, d_n:]  # [d_n,d_c], [d_v,d_c]
        q_lat = q_nope[0, h, 0] @ w_uk  # [d_c]
        scores = (lat[0, :, g] @ q_lat + k_pe[0] @ q_pe[0, h, 0]) / math.sqrt(d_n + d_r)
        o_lat = torch.softmax(scores, -1) @ lat[0, :, g]  # [d_c]
        heads.append(w_uv @ o_lat)
    return torch.cat(heads) @ w["wo"].T


def gla_cache_dict(w, x, start):
    lat, k_pe = gla_cache(w, x, start)
    return {"latent": lat, "k_pe": k_pe}


def gla_cache_width(w):
    lat, k_pe = gla_cache(w, torch.zeros(1, 1, D), 0)
    return lat[0, 0].numel() + k_pe[0, 0].numel()


# ---------------------------------------------------------------- TPA ------------
def tpa_weights():
    R_q, R_k, R_v = TPA["R_q"], TPA["R_k"], TPA["R_v"]
    return {
        "wa_q": randw(H * R_q, D), "wb_q": randw(R_q * E, D),
        "wa_k": randw(H * R_k, D), "wb_k": randw(R_k * E, D),
        "wa_v": randw(H * R_v, D), "wb_v": randw(R_v * E, D),
        "wo": randw(D, H * E),
    }


def tpa_factors(w, x, start, which):
    """A [B,T,H,R] (projection output index h*R + r), B [B,T,R,E] (r*E + e),
    RoPE on B over e for q and k only."""
    R = TPA["R_" + which]
    b, t, _ = x.shape
    A = (x @ w["wa_" + which].T).view(b, t, H, R)
    Bf = (x @ w["wb_" + which].T).view(b, t, R, E)
    if which in ("q", "k"):
        Bf = rope(Bf.transpose(1, 2), positions(start, t)).transpose(1, 2)
    return A, Bf


def tpa_forward(w, x, start=0):
    b, t, _ = x.shape
    qkv = []
    for which in ("q", "k", "v"):
        A, Bf = tpa_factors(w, x, start, which)
        qkv.append((A @ Bf / TPA["R_" + which]).transpose(1, 2))  # [B,H,T,E]
    o = attend(*qkv, 1 / math.sqrt(E))
    return o.transpose(1, 2).reshape(b, t, H * E) @ w["wo"].T


def tpa_decode(w, x, start, i):
    """Token i from the cached factors A_k [S,H,R_k], B_k [S,R_k,E], A_v, B_v;
    no k or v of size H*E is formed (flashtpa_decode_torch.py's contraction)."""
    R_q, R_k, R_v = TPA["R_q"], TPA["R_k"], TPA["R_v"]
    Ak, Bk = (f[0] for f in tpa_factors(w, x[:, : i + 1], start, "k"))
    Av, Bv = (f[0] for f in tpa_factors(w, x[:, : i + 1], start, "v"))
    Aq, Bq = (f[0, 0] for f in tpa_factors(w, x[:, i : i + 1], start + i, "q"))  # [H,R_q], [R_q,E]
    s1 = torch.einsum("re,mse->mrs", Bq, Bk)
    s2 = torch.einsum("hr,mrs->mhs", Aq, s1)
    score = torch.einsum("mhs,mhs->hm", s2, Ak) / (R_q * R_k * math.sqrt(E))
    p = torch.softmax(score, -1)
    o = torch.einsum("hm,mhs,mse->he", p, Av, Bv) / R_v
    return o.reshape(H * E) @ w["wo"].T


def tpa_cache_dict(w, x, start):
    (a_k, b_k), (a_v, b_v) = tpa_factors(w, x, start, "k"), tpa_factors(w, x, start, "v")
    return {"a_k": a_k, "b_k": b_k, "a_v": a_v, "b_v": b_v}


def tpa_cache_width(w):
    z = torch.zeros(1, 1, D)
    return sum(f[0, 0].numel() for which in ("k", "v") for f in tpa_factors(w, z, 0, which))


# ---------------------------------------------------------------- driver ---------
def check_decode(name, decode, w, x, start, full):
    for i in range(x.shape[1]):
        err = (decode(w, x, start, i) - full[0, i]).abs().max().item()
        assert err < DECODE_TOL, (name, start, i, err)


def build():
    """All fixture tensors, in file order; runs every self-check."""
    torch.manual_seed(20250527)
    K, d_r = GTA["K"], GTA["d_r"]
    h_c, d_c, g_dr = GLA["h_c"], GLA["d_c"], GLA["d_r"]
    R_k, R_v = TPA["R_k"], TPA["R_v"]
    assert d_r == E // 2
    # cache elements per token per layer, as the papers count them
    gta_paper, gla_paper, tpa_paper = K * E + E // 2, h_c * d_c + g_dr, (R_k + R_v) * (H + E)
    assert (gta_paper, gla_paper, tpa_paper) == (40, 32, 80)
    variants = [
        ("gta", gta_weights, gta_forward, gta_decode, gta_cache_width, gta_paper, gta_cache_dict),
        ("gla", lambda: gla_weights(0), gla_forward, gla_decode, gla_cache_width, gla_paper, gla_cache_dict),
        ("gla_q", lambda: gla_weights(10), gla_forward, gla_decode, gla_cache_width, gla_paper, gla_cache_dict),
        ("tpa", tpa_weights, tpa_forward, tpa_decode, tpa_cache_width, tpa_paper, tpa_cache_dict),
    ]
    fx = {}
    for name, make_w, forward, decode, cache_width, paper_width, cache_of in variants:
        w = make_w()
        assert cache_width(w) == paper_width, (name, cache_width(w), paper_width)
        x = rounded(torch.randn(1, T, D))
        out, out3 = forward(w, x, 0), forward(w, x, 3)
        assert out.abs().max() > 0.1, name
        # RoPE scores depend only on relative positions, so without a cache the
        # start=3 output equals the start=0 one; only the cache (rotated keys)
        # shows absolute positions, hence the cache_start3 tensors.
        assert (out - out3).abs().max() < DECODE_TOL, (name, (out - out3).abs().max())
        cache0, cache3 = cache_of(w, x, 0), cache_of(w, x, 3)
        assert any((cache0[k] - cache3[k]).abs().max() > 1e-3 for k in cache3), name
        check_decode(name, decode, w, x, 0, out)
        check_decode(name, decode, w, x, 3, out3)
        fx[f"{name}.x"] = x
        for n, t in w.items():
            fx[f"{name}.{n}.weight"] = t
        fx[f"{name}.out"] = out
        fx[f"{name}.out_start3"] = out3
        for k, t in cache3.items():
            fx[f"{name}.cache_start3.{k}"] = t
    return fx


def render(fx):
    lines = [f"attnlab-fixture {VERSION}"]
    for name, t in fx.items():
        lines.append(f"{name} {t.dim()} {' '.join(str(d) for d in t.shape)}")
        lines.append(" ".join(f"{v:.6g}" if name.endswith((".x", ".weight")) else f"{v:.15g}"
                              for v in t.flatten().tolist()))
    return "\n".join(lines) + "\n"


def main():
    fx = build()
    OUT.write_text(render(fx))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(fx)} tensors)")


if __name__ == "__main__":
    main()
