#!/usr/bin/env python3
"""Golden fixtures for attnlab's model tests: a small, independent PyTorch
reference of RoPE with YaRN and grouped-query attention, and MLA through HF
transformers' DeepseekV3Attention (8 rotary pairs, YaRN with DeepSeek's mscale
and mscale_all_dim), in fp64 with fixed seeds. Writes
tests/fixtures/model_golden.txt. Needs transformers at generation time only.

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


def hf_mla(w, x, D, H, N, R, V, C, theta, factor, orig, mscale, mscale_all_dim, inv, rot, soft):
    """x through HF's DeepseekV3Attention (rotate-half RoPE, rope_interleave off),
    in fp64. HF computes the rotary table and RMSNorm in fp32, so the table is
    built here in fp64 from our fp64 YaRN, after checking it against HF's
    _compute_yarn_parameters, and the norm runs in fp64 with HF's formula."""
    from transformers import DeepseekV3Config
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.deepseek_v3 import modeling_deepseek_v3 as ds

    T = x.shape[1]
    rope_params = {"rope_type": "yarn", "rope_theta": theta, "factor": factor, "original_max_position_embeddings": orig,
            "beta_fast": 32.0, "beta_slow": 1.0, "mscale": mscale, "mscale_all_dim": mscale_all_dim}
    cfg = DeepseekV3Config(hidden_size=D, num_attention_heads=H, num_key_value_heads=H, q_lora_rank=None,
                           kv_lora_rank=C, qk_nope_head_dim=N, qk_rope_head_dim=R, v_head_dim=V,
                           head_dim=R, rope_interleave=False, attention_bias=False,
                           max_position_embeddings=orig * int(factor), rope_parameters=rope_params)
    cfg._attn_implementation = "sdpa"  # eager runs its softmax in fp32
    hf_inv, hf_rot = ROPE_INIT_FUNCTIONS["yarn"](cfg, "cpu")
    assert len(hf_inv) == R // 2 >= 8 and torch.allclose(hf_inv.double(), inv, rtol=1e-6), (hf_inv, inv)
    assert abs(hf_rot - rot) < 1e-6 and rot != 1.0, (hf_rot, rot)
    ratio = (inv * theta ** (torch.arange(0, R, 2) / R)).tolist()
    assert ratio[0] > 0.9999 and ratio[-1] < 1 / factor * 1.0001 and any(1 / factor * 1.0001 < r < 0.9999 for r in ratio)

    attn = ds.DeepseekV3Attention(cfg, layer_idx=0).double().eval()
    assert attn.scaling != (N + R) ** -0.5  # mscale_all_dim reached the softmax scale

    class Fp64RMSNorm(torch.nn.Module):
        def __init__(self, weight, eps):
            super().__init__()
            self.weight, self.eps = weight, eps

        def forward(self, h):
            return self.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps))

    attn.kv_a_layernorm = Fp64RMSNorm(w["kv_norm"], attn.kv_a_layernorm.variance_epsilon)
    with torch.no_grad():
        attn.q_proj.weight.copy_(w["wq"])
        attn.kv_a_proj_with_mqa.weight.copy_(w["wkv_a"])
        attn.kv_b_proj.weight.copy_(w["wkv_b"])
        attn.o_proj.weight.copy_(w["wo"])
        ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
        emb = torch.cat([ang, ang], -1)[None]
        mask = torch.zeros(1, 1, T, T).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        out, _ = attn(x, (emb.cos() * rot, emb.sin() * rot), mask)
    # Our own naive formula in fp64 must agree: guards against misusing HF's module.
    q = (x @ w["wq"].T).view(1, T, H, N + R).transpose(1, 2)
    kv = x @ w["wkv_a"].T
    ckv = rms(kv[..., :C], w["kv_norm"])
    k_pe = rope(kv[..., C:].unsqueeze(1), 0, inv, rot).expand(1, H, T, R)
    up = (ckv @ w["wkv_b"].T).view(1, T, H, N + V).transpose(1, 2)
    k = torch.cat([up[..., :N], k_pe], -1)
    ours = attend(torch.cat([q[..., :N], rope(q[..., N:], 0, inv, rot)], -1), k, up[..., N:],
                  soft / math.sqrt(N + R)).transpose(1, 2).reshape(1, T, H * V) @ w["wo"].T
    assert (ours - out).abs().max() < 1e-12, (ours - out).abs().max()
    return out


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

    # --- MLA through HF transformers' DeepseekV3Attention ---------------------------
    # D=8, H=2, d_n=4, d_r=16 (8 rotary pairs), d_v=3, d_c=6, no query compression,
    # T=5. YaRN factor 4 over an original length of 4096, so the ramp is partial:
    # pairs 0-1 extrapolate, 2-5 blend, 6-7 interpolate. mscale and mscale_all_dim
    # differ, so both the cos/sin factor and the softmax factor are exercised.
    D, H, N, R, V, C, T = 8, 2, 4, 16, 3, 6, 5
    theta, factor, orig, mscale, mscale_all_dim = 10000.0, 4.0, 4096, 1.0, 0.707
    inv, rot, soft = yarn(R, theta, factor, orig, 32.0, 1.0, mscale, mscale_all_dim)
    w = {
        "wq": rounded(torch.randn(H * (N + R), D) * 0.3),
        "wkv_a": rounded(torch.randn(C + R, D) * 0.3),
        "kv_norm": rounded(1 + 0.1 * torch.randn(C)),
        "wkv_b": rounded(torch.randn(H * (N + V), C) * 0.3),
        "wo": rounded(torch.randn(D, H * V) * 0.3),
    }
    x = rounded(torch.randn(1, T, D))
    o = hf_mla(w, x, D, H, N, R, V, C, theta, factor, orig, mscale, mscale_all_dim, inv, rot, soft)
    fx["mla.out"] = o
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
