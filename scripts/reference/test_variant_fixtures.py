#!/usr/bin/env python3
"""Checks tests/fixtures/variants_golden.txt (plain asserts, no pytest):

1. Re-runs make_variant_fixtures.build() in memory (which runs its own checks:
   decode from the compressed caches equals the full forward to 1e-12 at every
   position, cache widths equal the papers' formulas) and compares with the
   file on disk: same names and shapes, inputs and weights exactly, outputs to
   1e-12.
2. Recomputes v.out from the file's own weights with a second, line-by-line
   transcription of the reference modules (LlamaFlashGTA.forward,
   LlamaFlashGLA.forward, T6 CPLinear + CausalSelfAttention), with
   F.scaled_dot_product_attention standing in for flash_attn_func (same default
   scale, 1/sqrt(q head dim)), and no biases. Catches layout slips that the
   first reference and its own decode could share.

Run:  /root/.local/share/attnlab/venv/bin/python scripts/reference/test_variant_fixtures.py
"""
import pathlib
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_variant_fixtures as mvf  # noqa: E402

torch.set_default_dtype(torch.float64)


def parse(text):
    lines = text.split("\n")
    assert lines[0] == f"attnlab-fixture {mvf.VERSION}", lines[0]
    fx, i = {}, 1
    while i < len(lines) and lines[i]:
        head = lines[i].split()
        name, ndim = head[0], int(head[1])
        shape = [int(d) for d in head[2:2 + ndim]]
        fx[name] = torch.tensor([float(v) for v in lines[i + 1].split()]).view(shape)
        i += 2
    return fx


def check_file_matches_generator():
    disk = parse(mvf.OUT.read_text())
    mem = parse(mvf.render(mvf.build()))
    assert list(disk) == list(mem), (list(disk), list(mem))
    for name in mem:
        a, b = disk[name], mem[name]
        assert a.shape == b.shape, (name, a.shape, b.shape)
        if name.endswith((".x", ".weight")):
            assert torch.equal(a, b), name
        else:
            err = ((a - b).abs() / (1 + b.abs())).max().item()
            assert err < 1e-12, (name, err)
    return disk


# --- transcriptions of the reference code, fed the fixture's weights -----------
def hf_rope(x, cos, sin):
    """HF apply_rotary_pos_emb with rotate_half (both reference repos' GTA/GLA)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


def cos_sin(width, t, start=0):
    ang = torch.outer(torch.arange(start, start + t, dtype=torch.float64), mvf.inv_freq(width))
    emb = torch.cat((ang, ang), -1)
    return emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]  # unsqueeze_dim=2 layout


def flash(q, k, v):
    """flash_attn_func(q, k, v, causal=True) on [b, l, h, d] with SDPA."""
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
    return o.transpose(1, 2)


def ref_gta(w, x):
    bsz, q_len, _ = x.shape
    num_heads, head_dim = mvf.H, mvf.E
    rope_dim = w["wk_rope"].shape[0]
    num_kv = w["wkv"].shape[0] // head_dim
    query_states = (x @ w["wq"].T).view(bsz, q_len, num_heads, head_dim)
    kv_states = (x @ w["wkv"].T).view(bsz, q_len, num_kv, head_dim)
    query, query_rope = torch.split(query_states, [query_states.size(-1) - rope_dim, rope_dim], dim=-1)
    key_rope = (x @ w["wk_rope"].T).view(bsz, q_len, 1, rope_dim).expand(bsz, q_len, num_heads, rope_dim)
    cos, sin = cos_sin(rope_dim, q_len)
    query_rope, key_rope = hf_rope(query_rope, cos, sin), hf_rope(key_rope, cos, sin)
    query_states = torch.cat([query, query_rope], dim=-1)
    kv_tied, value_states = torch.split(kv_states, [kv_states.size(-1) - rope_dim, rope_dim], dim=-1)
    kv_tied = kv_tied.repeat_interleave(num_heads // num_kv, dim=2)
    value_states = value_states.repeat_interleave(num_heads // num_kv, dim=2)
    key_states = torch.cat([kv_tied, key_rope], dim=-1)
    value_states = torch.cat([kv_tied, value_states], dim=-1)
    return flash(query_states, key_states, value_states).reshape(bsz, q_len, -1) @ w["wo"].T


def rms_norm(h, weight, eps=1e-6):
    return weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps))


def ref_gla(w, x):
    """LlamaFlashGLA.forward with its two latent heads (h_c = 2), generalised only
    in that the per-head [k | v] split of W_ukv_g's output is at d_n, not head_dim."""
    bsz, q_len, _ = x.shape
    num_heads, half_heads = mvf.H, mvf.H // 2
    d_n, d_r, d_v = mvf.GLA["d_n"], mvf.GLA["d_r"], mvf.GLA["d_v"]
    kv_proj_dim = w["wkv_a"].shape[0] - d_r
    assert w["kv_norm"].numel() == kv_proj_dim and kv_proj_dim % 2 == 0
    latent_dim_per_head = kv_proj_dim // 2
    if "wq" in w:  # attnlab's q_rank = 0 path (the reference always compresses)
        query_states = x @ w["wq"].T
    else:
        query_states = rms_norm(x @ w["wq_a"].T, w["q_norm"]) @ w["wq_b"].T
    query_states = query_states.view(bsz, q_len, num_heads, d_n + d_r).clone()
    query_rope = query_states[..., d_n:]
    compressed_kv, key_rope = torch.split(x @ w["wkv_a"].T, [kv_proj_dim, d_r], dim=-1)
    key_rope = key_rope.view(bsz, q_len, 1, d_r)
    key_states = torch.zeros_like(query_states)
    value_states = torch.zeros(bsz, q_len, num_heads, d_n + d_r)  # zero-padded like the reference
    w_ukv = w["wkv_b"].split(half_heads * (d_n + d_v), dim=0)
    gains = w["kv_norm"].split(latent_dim_per_head)
    for i, sl in enumerate((slice(None, half_heads), slice(half_heads, None))):
        part = compressed_kv[..., i * latent_dim_per_head:(i + 1) * latent_dim_per_head]
        up = (rms_norm(part, gains[i]) @ w_ukv[i].T).view(bsz, q_len, half_heads, d_n + d_v)
        key_states[:, :, sl, :d_n] = up[..., :d_n]
        value_states[:, :, sl, :d_v] = up[..., d_n:]
    cos, sin = cos_sin(d_r, q_len)
    query_rope, key_rope = hf_rope(query_rope, cos, sin), hf_rope(key_rope, cos, sin)
    query_states[..., d_n:] = query_rope
    key_states[..., d_n:] = key_rope
    out = flash(query_states, key_states, value_states)[..., :d_v]
    return out.reshape(bsz, q_len, -1) @ w["wo"].T


def ref_tpa(w, x):
    """T6 CPLinear.forward + CausalSelfAttention.forward. T6's apply_rotary_emb
    is y1 = x1 cos + x2 sin, y2 = -x1 sin + x2 cos (angle -theta); fed -sin here
    it becomes attnlab's rotate-half +theta."""
    batch_size, seq_len, _ = x.shape
    n_head, head_dim = mvf.H, mvf.E
    q_rank = w["wa_q"].shape[0] // n_head
    rank = w["wa_k"].shape[0] // n_head
    assert w["wa_v"].shape[0] // n_head == rank  # T6 has one rank for k and v

    def t6_rotary(t):
        d = t.shape[3] // 2
        ang = torch.outer(torch.arange(seq_len, dtype=torch.float64), mvf.inv_freq(head_dim))
        cos, sin = ang.cos()[None, :, None, :], -ang.sin()[None, :, None, :]
        x1, x2 = t[..., :d], t[..., d:]
        return torch.cat([x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos], 3)

    A_q = (x @ w["wa_q"].T).view(batch_size, seq_len, n_head, q_rank)
    A_k = (x @ w["wa_k"].T).view(batch_size, seq_len, n_head, rank)
    A_v = (x @ w["wa_v"].T).view(batch_size, seq_len, n_head, rank)
    B_q = t6_rotary((x @ w["wb_q"].T).view(batch_size, seq_len, q_rank, head_dim))
    B_k = t6_rotary((x @ w["wb_k"].T).view(batch_size, seq_len, rank, head_dim))
    B_v = (x @ w["wb_v"].T).view(batch_size, seq_len, rank, head_dim)
    n = batch_size * seq_len
    q = torch.bmm(A_q.reshape(n, n_head, q_rank), B_q.reshape(n, q_rank, head_dim)).div_(q_rank)
    k = torch.bmm(A_k.reshape(n, n_head, rank), B_k.reshape(n, rank, head_dim)).div_(rank)
    v = torch.bmm(A_v.reshape(n, n_head, rank), B_v.reshape(n, rank, head_dim)).div_(rank)
    shape = (batch_size, seq_len, n_head, head_dim)
    y = flash(q.view(shape), k.view(shape), v.view(shape))
    return y.reshape(batch_size, seq_len, n_head * head_dim) @ w["wo"].T


def check_against_reference_transcription(fx):
    for name, ref in (("gta", ref_gta), ("gla", ref_gla), ("gla_q", ref_gla), ("tpa", ref_tpa)):
        prefix = name + "."
        w = {k[len(prefix):-len(".weight")]: t for k, t in fx.items()
             if k.startswith(prefix) and k.endswith(".weight")}
        out = ref(w, fx[prefix + "x"])
        err = (out - fx[prefix + "out"]).abs().max().item()
        assert err < 1e-12, (name, err)
        print(f"{name}: reference transcription matches {prefix}out (max err {err:.1e})")


def main():
    fx = check_file_matches_generator()
    print(f"{mvf.OUT.name}: matches the generator ({len(fx)} tensors)")
    check_against_reference_transcription(fx)
    print("ok")


if __name__ == "__main__":
    main()
