#!/usr/bin/env python3
"""A PyTorch reference of attnlab's language model, written from the C++
sources, for benchmarking attnlab against PyTorch (eager and torch.compile)
on the same model, and for checking that the two are the same model.

What it mirrors, and where (paths under framework/):

- model/transformer.{h,cpp}  TransformerLM: token embedding `wte`, the
  position encoding `position`, blocks `block0..`, final norm `norm_f`, LM
  head tied to `wte` (else `lm_head`, no bias). Pre-norm blocks
  x + attn(norm1(x)), then + mlp(norm2(x)). GPT-2 init: N(0, 0.02) for every
  parameter of dim >= 2, then the residual projections (attention `wo`, MLP
  `down`) N(0, 0.02 / sqrt(2 n_layers)); norm gains 1, biases 0.
  resolved_d_ff: d_ff = 4 D (gelu) or the SwiGLU 8/3 rule, and with
  model.match_params the MLP absorbs the attention's parameter difference to
  MHA (llround of delta / (2 or 3 D)).
- model/layers.{h,cpp}       Norm ("rms": x rsqrt(mean x^2 + 1e-6) w, with a
  gain and no bias; "layer": LayerNorm with gain and bias), computed in fp32
  (fp64 for fp64 inputs) and cast back; Mlp down(gelu(up x)) or
  down(silu(gate x) * up x), no biases (exact erf GELU).
- model/attention/grouped.*  MHA/GQA/MQA: wq, wk, wv, wo, no biases; RoPE on
  q and k; keys cached after RoPE.
- model/attention/latent.*   MLA: wq (q_rank 0) or wq_a, q_norm, wq_b;
  wkv_a (D -> C + R), kv_norm, wkv_b (C -> H (d_n + d_v)), wo. Widths left at
  0 come from ModelConfig::latent_dims (config/run_config.h): kv_rank 2E,
  nope_dim E, rope_dim E/2 (decoupled only), v_dim E, with E the head dim.
  Decode modes: "naive" (attnlab's: caches the up-projected k[H, d_n+d_r]
  and v[H, d_v]), "absorbed" (caches ckv[C] + krope[R], W_UK folded into the
  query, W_UV applied after attention, in fp32), and, not in attnlab's model
  but in its cost model (bench/kv_report.cpp "naive-latent"), "naive-latent":
  caches the latent like absorbed and re-expands every cached token each
  step. Prefill with an empty cache (and training) always runs the naive
  formulation, as attnlab does.
- model/attention/inner.*    The SDPA path (backend auto = sdpa): is_causal
  when T == S and there is no score bias, else an end-aligned boolean mask
  (or ALiBi's bias as an additive float mask); GQA expands k/v to H heads
  first. The math path: fp32 scores, softmax and accumulation.
- model/position/*           none, learned (wpe [max_seq_len, D], added at
  the embedding), ALiBi (Press et al. slopes, bias -slope (i - j)), RoPE with
  the rotate-half layout, angles in fp32, theta and fraction (dims=first);
  no context-extension scaling.
- model/kv_cache.*           One preallocated [B, max_len, part...] tensor
  per cache part; append copies T tokens and returns views of all cached.
- train/optimizer.cpp, train/schedule.cpp, train/trainer.cpp, configs/optim/
  adamw.yaml: AdamW with decay on tensors of dim >= 2 only (weight decay 0.1,
  betas (0.9, 0.95), eps 1e-8), linear warmup then cosine to min_lr, grad
  clipping at norm 1.0, zero_grad(set_to_none) at the start of each step,
  cross-entropy on fp32 logits, bf16 as autocast over fp32 weights.

Use:

    from attnlab_model import build_model, param_count
    model = build_model({"n_layers": 4, "d_model": 128, "n_heads": 4, "attention": "mla"})
    logits_BTV = model(tokens_BT)                     # training forward
    cache = model.make_cache(batch, max_len)          # after model.set_decode(...)
    logits_BTV = model(tokens_BT, cache)              # incremental forward

`config_from_run(run_dir)` and `load_checkpoint(model, path)` read an attnlab
run directory and its checkpoints (LibTorch archives, which torch.jit.load
opens); test_attnlab_model.py uses them to compare with attnlab's own numbers.
"""
from __future__ import annotations

import math
import pathlib
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

# attnlab's defaults: configs/config.yaml (model=tiny, attention=mha,
# position=rope) and config/run_config.h. Widths of 0 are derived.
DEFAULTS = {
    "n_layers": 2,
    "d_model": 128,
    "n_heads": 4,
    "head_dim": 0,          # 0: d_model / n_heads
    "d_ff": 0,              # 0: 4 d_model (gelu), SwiGLU 8/3 rule
    "mlp": "gelu",          # gelu | swiglu
    "norm": "rms",          # rms | layer
    "tie_embeddings": True,
    "max_seq_len": 128,
    "match_params": False,
    "vocab_size": 256,      # byte tokenizer
    "attention": "mha",     # mha | gqa | mqa | mla
    "n_kv_heads": 0,        # 0: mha H, mqa 1 (gqa needs a value)
    "q_rank": 0,            # MLA; 0 = plain query projection
    "kv_rank": 0,           # MLA d_c; 0: 2E
    "nope_dim": 0,          # MLA d_n; 0: E
    "rope_dim": 0,          # MLA d_r; 0: E/2 (decoupled only)
    "v_dim": 0,             # MLA d_v; 0: E
    "rope_mode": "decoupled",  # MLA: decoupled | none | coupled
    "mla_decode": "absorbed",  # MLA: naive | absorbed | naive-latent
    "cache_dtype": "fp32",
    "backend": "auto",      # auto (= sdpa) | sdpa | math
    "position": "rope",     # none | learned | alibi | rope
    "rope_theta": 10000.0,
    "rope_fraction": 1.0,
}

# configs/optim/adamw.yaml (OptimConfig in config/run_config.h).
OPTIM_DEFAULTS = {
    "lr": 1e-3,
    "min_lr": 1e-4,
    "weight_decay": 0.1,
    "betas": (0.9, 0.95),
    "eps": 1e-8,
    "warmup_steps": 10,
    "schedule": "cosine",
    "grad_clip": 1.0,
}

CACHE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """inner.cpp accumulation_dtype: fp64 stays fp64, everything else fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _llround(x: float) -> int:
    """std::llround: halves away from zero (Python's round() goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def _no_autocast(device: torch.device):
    """runtime/autocast.h AutocastOff: ops compute in their inputs' dtype."""
    return torch.autocast(device.type, enabled=False) if torch.is_autocast_enabled(device.type) else nullcontext()


# ----------------------------------------------------------------- config


def resolve_config(cfg: dict) -> dict:
    """attnlab's defaults filled in and the derived widths resolved:
    head_dim, n_kv_heads (grouped), and MLA's latent widths (latent_dims)."""
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    c = {**DEFAULTS, **cfg}
    kind = c["attention"]
    if kind not in ("mha", "gqa", "mqa", "mla"):
        raise ValueError(f"attention {kind!r} is not one of mha, gqa, mqa, mla")
    if c["backend"] not in ("auto", "math", "sdpa"):
        raise ValueError(f"backend {c['backend']!r} is not one of auto, math, sdpa")
    e = c["head_dim"] if c["head_dim"] > 0 else c["d_model"] // c["n_heads"]
    c["head_dim"] = e
    if kind == "mla":
        c["n_kv_heads"] = 0
        c["kv_rank"] = c["kv_rank"] or 2 * e
        c["nope_dim"] = c["nope_dim"] or e
        c["rope_dim"] = 0 if c["rope_mode"] != "decoupled" else (c["rope_dim"] or e // 2)
        c["v_dim"] = c["v_dim"] or e
        if c["rope_mode"] == "coupled" and c["mla_decode"] != "naive":
            raise ValueError("MLA with coupled RoPE decodes naively only (latent.cpp kCoupledAbsorbed)")
    else:
        k = c["n_kv_heads"] or (1 if kind == "mqa" else c["n_heads"])
        if (kind == "mha" and k != c["n_heads"]) or (kind == "mqa" and k != 1) or c["n_heads"] % k:
            raise ValueError(f"{kind} with n_heads={c['n_heads']} cannot have n_kv_heads={k}")
        c["n_kv_heads"] = k
    return c


def config_from_run(run_dir: str | pathlib.Path) -> dict:
    """The build_model config of an attnlab run directory: its config.yaml,
    and the vocabulary its run file records (/data tokenizer_vocab_size).
    NotImplementedError for RoPE scaling and the MHA2MLA dims (not mirrored)."""
    import h5py
    import yaml

    run_dir = pathlib.Path(run_dir)
    run = yaml.safe_load((run_dir / "config.yaml").read_text())
    m, a, p = run["model"], run["attention"], run["position"]
    if p["kind"] == "rope" and p["scaling"]["kind"] != "none":
        raise NotImplementedError(f"position.scaling.kind={p['scaling']['kind']} is not mirrored here")
    if p["kind"] == "rope" and p["dims"] != "first" and p["fraction"] != 1.0:
        raise NotImplementedError(f"position.dims={p['dims']} is not mirrored here")
    with h5py.File(run_dir / "run.h5", "r") as f:
        vocab_size = int(f["data"].attrs["tokenizer_vocab_size"])
    cfg = {k: m[k] for k in ("n_layers", "d_model", "n_heads", "head_dim", "d_ff", "mlp", "norm", "tie_embeddings",
                             "max_seq_len", "match_params")}
    cfg.update(vocab_size=vocab_size, attention=a["kind"], n_kv_heads=a["n_kv_heads"], cache_dtype=a["cache_dtype"],
               backend=a["backend"], position=p["kind"], rope_theta=p["theta"], rope_fraction=p["fraction"])
    if a["kind"] == "mla":
        cfg.update({k: a[k] for k in ("q_rank", "kv_rank", "nope_dim", "rope_dim", "v_dim", "rope_mode")},
                   mla_decode=a["decode"])
    return cfg


# ----------------------------------------------------------------- layers


class Norm(nn.Module):
    """layers.cpp NormImpl: RMSNorm (gain only) or LayerNorm (gain and bias),
    eps 1e-6, computed in fp32 (fp64 for fp64 inputs), cast back."""

    def __init__(self, kind: str, dim: int, eps: float = 1e-6):
        super().__init__()
        if kind not in ("rms", "layer"):
            raise ValueError(f"norm {kind!r} is not one of rms, layer")
        self.rms, self.eps = kind == "rms", eps
        self.weight = nn.Parameter(torch.ones(dim))
        if not self.rms:
            self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ct = torch.float64 if x.dtype == torch.float64 else torch.float32
        xf = x.to(ct)
        if self.rms:
            y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.to(ct)
        else:
            mean = xf.mean(-1, keepdim=True)
            var = (xf - mean).pow(2).mean(-1, keepdim=True)
            y = (xf - mean) * torch.rsqrt(var + self.eps) * self.weight.to(ct) + self.bias.to(ct)
        return y.to(x.dtype)


def _linear(n_in: int, n_out: int) -> nn.Linear:
    return nn.Linear(n_in, n_out, bias=False)


def mlp_params(kind: str, d_model: int, d_ff: int) -> int:
    """layers.cpp mlp_params: 2 D F (gelu) or 3 D F (swiglu)."""
    return (3 if kind == "swiglu" else 2) * d_model * d_ff


def default_d_ff(kind: str, d_model: int) -> int:
    """layers.cpp default_d_ff: 4 D (gelu), 8/3 D rounded up to a multiple of 8 (swiglu)."""
    return ((8 * d_model // 3 + 7) // 8) * 8 if kind == "swiglu" else 4 * d_model


class Mlp(nn.Module):
    """layers.cpp MlpImpl: down(gelu(up x)) or down(silu(gate x) * up x), no biases."""

    def __init__(self, kind: str, d_model: int, d_ff: int):
        super().__init__()
        if kind not in ("gelu", "swiglu"):
            raise ValueError(f"mlp {kind!r} is not one of gelu, swiglu")
        if d_ff < 1:
            raise ValueError(f"the MLP width came out as {d_ff}; it must be positive")
        self.swiglu = kind == "swiglu"
        self.up = _linear(d_model, d_ff)
        if self.swiglu:
            self.gate = _linear(d_model, d_ff)
        self.down = _linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x)))


# ----------------------------------------------------------------- positions


class Position(nn.Module):
    """position/position.h: identity embed and rotate, no score bias."""

    def embed(self, x_BTD: torch.Tensor, start: int) -> torch.Tensor:
        return x_BTD

    def rotate(self, x: torch.Tensor, start: int) -> torch.Tensor:
        return x

    def score_bias(self, n_heads: int, start: int, t: int, s: int, dtype, device):
        return None


class LearnedPosition(Position):
    """simple.cpp LearnedPosition: a [max_seq_len, D] table added at the embedding."""

    def __init__(self, d_model: int, max_seq_len: int):
        super().__init__()
        self.wpe = nn.Parameter(torch.randn(max_seq_len, d_model) * 0.02)

    def embed(self, x_BTD: torch.Tensor, start: int) -> torch.Tensor:
        t = x_BTD.size(1)
        if start + t > self.wpe.size(0):
            raise ValueError(f"learned positions stop at max_seq_len={self.wpe.size(0)}, asked for {start + t - 1}")
        return x_BTD + self.wpe.narrow(0, start, t).to(x_BTD.dtype)


def alibi_slopes(n_heads: int) -> list[float]:
    """simple.cpp alibi_slopes (Press et al. 2022), head 0 steepest."""

    def power_of_two(n):
        first = 2.0 ** (-8.0 / n)
        return [first ** (i + 1) for i in range(n)]

    p = 1
    while p * 2 <= n_heads:
        p *= 2
    slopes = power_of_two(p)
    extra = power_of_two(2 * p)
    slopes += extra[0::2][: n_heads - p]
    return slopes


class Alibi(Position):
    """simple.cpp Alibi: bias slope_h * (key - query) on the scores."""

    def score_bias(self, n_heads: int, start: int, t: int, s: int, dtype, device):
        slopes_H = torch.tensor(alibi_slopes(n_heads), dtype=torch.float64).to(device, dtype)
        q_T = torch.arange(start, start + t, dtype=dtype, device=device)
        k_S = torch.arange(0, s, dtype=dtype, device=device)
        return slopes_H.view(n_heads, 1, 1) * (k_S.unsqueeze(0) - q_T.unsqueeze(1)).unsqueeze(0)


class Rope(Position):
    """rope.cpp Rope with dims=first and no scaling: the first
    W = fraction x width dims rotate (rotate-half: dim i pairs with i + W/2)
    with frequencies theta^(-2i/W); angles in fp32 (fp64 for fp64 inputs)."""

    def __init__(self, theta: float, fraction: float):
        super().__init__()
        self.theta, self.fraction = theta, fraction
        self._freq = {}  # (width, device, dtype) -> [W/2] inverse frequencies

    def rotary_width(self, width: int) -> int:
        w = self.fraction * width
        rounded = _llround(w)
        if abs(w - rounded) > 1e-9 or rounded % 2 or rounded < 2:
            raise ValueError(f"{self.fraction} of a rotated width of {width} gives {w} rotary dims")
        return rounded

    def rotate(self, x: torch.Tensor, start: int) -> torch.Tensor:
        width, t = x.size(-1), x.size(-2)
        ct = torch.float64 if x.dtype == torch.float64 else torch.float32
        key = (width, x.device, ct)
        if key not in self._freq:
            w = self.rotary_width(width)
            freq = [self.theta ** (-2.0 * i / w) for i in range(w // 2)]
            self._freq[key] = torch.tensor(freq, dtype=torch.float64).to(x.device, ct)
        freq_P = self._freq[key]
        rotary = 2 * freq_P.size(0)
        xc = x.to(ct)
        block = xc if rotary == width else xc.narrow(-1, 0, rotary)
        angle_TP = torch.outer(torch.arange(start, start + t, dtype=ct, device=x.device), freq_P)
        cos_TW, sin_TW = torch.cos(angle_TP).repeat(1, 2), torch.sin(angle_TP).repeat(1, 2)
        h0, h1 = block.chunk(2, -1)
        out = block * cos_TW + torch.cat([-h1, h0], -1) * sin_TW
        if rotary != width:
            out = torch.cat([out, xc.narrow(-1, rotary, width - rotary)], -1)
        return out.to(x.dtype)


def make_position(c: dict) -> Position:
    kind = c["position"]
    if kind == "none":
        return Position()
    if kind == "learned":
        return LearnedPosition(c["d_model"], c["max_seq_len"])
    if kind == "alibi":
        return Alibi()
    if kind == "rope":
        return Rope(c["rope_theta"], c["rope_fraction"])
    raise ValueError(f"position {kind!r} is not one of none, learned, alibi, rope")


# ----------------------------------------------------------------- KV cache


class LayerCache:
    """kv_cache.cpp LayerCache: one [B, max_len, *shape] tensor per part.
    `length` may be set back (the decode benchmark rewinds to a fixed context)."""

    def __init__(self, layout: list[tuple[str, tuple[int, ...]]], batch: int, max_len: int, dtype, device):
        self.layout, self.batch, self.max_len, self.length = layout, batch, max_len, 0
        self.storage = [torch.zeros(batch, max_len, *shape, dtype=dtype, device=device) for _, shape in layout]

    def append(self, parts: list[torch.Tensor]) -> list[torch.Tensor]:
        t = parts[0].size(1)
        for (name, shape), part in zip(self.layout, parts, strict=True):
            if tuple(part.shape) != (self.batch, t, *shape):
                raise ValueError(f"cache part {name!r} must be {(self.batch, t, *shape)}, got {tuple(part.shape)}")
        if self.length + t > self.max_len:
            raise ValueError(f"KV cache full: {self.length} cached + {t} new tokens exceed {self.max_len}")
        views = []
        for store, part in zip(self.storage, parts):
            store.narrow(1, self.length, t).copy_(part)
            views.append(store.narrow(1, 0, self.length + t))
        self.length += t
        return views


class KvCache:
    """kv_cache.cpp KvCache: one LayerCache per layer."""

    def __init__(self, layouts, batch: int, max_len: int, dtype, device):
        self.layers = [LayerCache(layout, batch, max_len, dtype, device) for layout in layouts]

    @property
    def length(self) -> int:
        return self.layers[0].length

    @length.setter
    def length(self, n: int):
        for layer in self.layers:
            layer.length = n


# ----------------------------------------------------------------- attention


def causal_mask(t: int, s: int, device) -> torch.Tensor:
    """inner.cpp causal_mask: [T, S], query t sees keys 0 .. S - T + t."""
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(s - t)


def inner_attention(q_BHTE, k_BKSE, v_BKSF, scale: float, bias_HTS, backend: str):
    """inner.cpp inner_attention: the math reference or SDPA (auto = sdpa)."""
    h, k, t, s = q_BHTE.size(1), k_BKSE.size(1), q_BHTE.size(2), k_BKSE.size(2)
    b = q_BHTE.size(0)
    if backend == "math":
        ct = _accumulation_dtype(q_BHTE.dtype)
        with _no_autocast(q_BHTE.device):
            q = q_BHTE.to(ct).reshape(b, k, (h // k) * t, q_BHTE.size(3))
            scores = torch.matmul(q, k_BKSE.to(ct).transpose(-1, -2)).mul_(scale).view(b, h, t, s)
            if bias_HTS is not None:
                scores = scores + bias_HTS.to(ct)
            scores = scores.masked_fill(causal_mask(t, s, q.device).logical_not(), float("-inf"))
            p = torch.softmax(scores, -1).view(b, k, (h // k) * t, s)
            o = torch.matmul(p, v_BKSF.to(ct))
        return o.view(b, h, t, v_BKSF.size(3)).to(q_BHTE.dtype)
    kk, vv = k_BKSE.to(q_BHTE.dtype), v_BKSF.to(q_BHTE.dtype)
    if k != h:  # grouped heads: each kv head repeated for its H/K query heads
        kk = kk.unsqueeze(2).expand(b, k, h // k, s, kk.size(3)).reshape(b, h, s, kk.size(3))
        vv = vv.unsqueeze(2).expand(b, k, h // k, s, vv.size(3)).reshape(b, h, s, vv.size(3))
    if bias_HTS is None and t == s:
        return F.scaled_dot_product_attention(q_BHTE, kk, vv, is_causal=True, scale=scale)
    # SDPA's is_causal aligns to the top-left: the end-aligned mask explicitly.
    mask = causal_mask(t, s, q_BHTE.device)
    if bias_HTS is not None:
        mask = torch.where(mask, bias_HTS, torch.full((), float("-inf"), dtype=bias_HTS.dtype,
                                                      device=bias_HTS.device)).to(q_BHTE.dtype).unsqueeze(0)
    return F.scaled_dot_product_attention(q_BHTE, kk, vv, attn_mask=mask, scale=scale)


class GroupedAttention(nn.Module):
    """grouped.cpp GroupedAttention: MHA (K = H), GQA, MQA (K = 1)."""

    def __init__(self, c: dict):
        super().__init__()
        self.h, self.k, self.e, self.backend = c["n_heads"], c["n_kv_heads"], c["head_dim"], c["backend"]
        self.wq = _linear(c["d_model"], self.h * self.e)
        self.wk = _linear(c["d_model"], self.k * self.e)
        self.wv = _linear(c["d_model"], self.k * self.e)
        self.wo = _linear(self.h * self.e, c["d_model"])

    def cache_layout(self):
        return [("k", (self.k, self.e)), ("v", (self.k, self.e))]

    def output_weight(self) -> torch.Tensor:
        return self.wo.weight

    def forward(self, x_BTD, position: Position, start: int, cache: LayerCache | None):
        b, t = x_BTD.size(0), x_BTD.size(1)
        q_BHTE = position.rotate(self.wq(x_BTD).view(b, t, self.h, self.e).transpose(1, 2), start)
        k_BKTE = position.rotate(self.wk(x_BTD).view(b, t, self.k, self.e).transpose(1, 2), start)
        v_BTKE = self.wv(x_BTD).view(b, t, self.k, self.e)
        k_BKSE, v_BKSE = k_BKTE, v_BTKE.transpose(1, 2)
        if cache is not None:
            k_all, v_all = cache.append([k_BKTE.transpose(1, 2), v_BTKE])
            k_BKSE, v_BKSE = k_all.transpose(1, 2), v_all.transpose(1, 2)
        s = k_BKSE.size(2)
        bias = position.score_bias(self.h, s - t, t, s, _accumulation_dtype(x_BTD.dtype), x_BTD.device)
        o_BHTE = inner_attention(q_BHTE, k_BKSE, v_BKSE, 1.0 / math.sqrt(self.e), bias, self.backend)
        return self.wo(o_BHTE.transpose(1, 2).reshape(b, t, self.h * self.e))


class LatentAttention(nn.Module):
    """latent.cpp LatentAttention (MLA), with attnlab's naive and absorbed
    decode paths and the re-expanding naive-latent path."""

    DECODE_MODES = ("naive", "absorbed", "naive-latent")

    def __init__(self, c: dict):
        super().__init__()
        self.h, self.q_rank, self.c = c["n_heads"], c["q_rank"], c["kv_rank"]
        self.n, self.r, self.f = c["nope_dim"], c["rope_dim"], c["v_dim"]
        self.coupled, self.backend = c["rope_mode"] == "coupled", c["backend"]
        self.set_decode(c["mla_decode"])
        d, qk = c["d_model"], self.n + self.r
        if self.q_rank > 0:
            self.wq_a = _linear(d, self.q_rank)
            self.q_norm = Norm("rms", self.q_rank)
            self.wq_b = _linear(self.q_rank, self.h * qk)
        else:
            self.wq = _linear(d, self.h * qk)
        self.wkv_a = _linear(d, self.c + self.r)
        self.kv_norm = Norm("rms", self.c)
        self.wkv_b = _linear(self.c, self.h * (self.n + self.f))
        self.wo = _linear(self.h * self.f, d)

    def set_decode(self, mode: str):
        if mode not in self.DECODE_MODES:
            raise ValueError(f"MLA decode {mode!r} is not one of {', '.join(self.DECODE_MODES)}")
        if mode != "naive" and self.coupled:
            raise ValueError("coupled RoPE decodes naively only: W_UK cannot be folded past the rotation")
        self.decode = mode

    def cache_layout(self):
        if self.decode == "naive":
            return [("k", (self.h, self.n + self.r)), ("v", (self.h, self.f))]
        return [("ckv", (self.c,))] + ([("krope", (self.r,))] if self.r > 0 else [])

    def output_weight(self) -> torch.Tensor:
        return self.wo.weight

    def softmax_scale(self) -> float:
        """1/sqrt(d_n + d_r): never the latent width the absorbed path contracts over."""
        return 1.0 / math.sqrt(self.n + self.r)

    def forward(self, x_BTD, position: Position, start: int, cache: LayerCache | None):
        b, t = x_BTD.size(0), x_BTD.size(1)
        q = self.wq_b(self.q_norm(self.wq_a(x_BTD))) if self.q_rank > 0 else self.wq(x_BTD)
        q_BHTE = q.view(b, t, self.h, self.n + self.r).transpose(1, 2)
        q_nope_BHTN, q_pe_BHTR = q_BHTE.narrow(-1, 0, self.n), q_BHTE.narrow(-1, self.n, self.r)
        kv_BTX = self.wkv_a(x_BTD)
        ckv_BTC = self.kv_norm(kv_BTX.narrow(-1, 0, self.c))
        kpe_BTR = kv_BTX.narrow(-1, self.c, self.r)
        if self.r > 0:
            q_pe_BHTR = position.rotate(q_pe_BHTR, start)
            kpe_BTR = position.rotate(kpe_BTR, start)
        latent = [ckv_BTC] + ([kpe_BTR] if self.r > 0 else [])
        if self.decode == "naive":
            o_BHTF = self._naive(q_nope_BHTN, q_pe_BHTR, ckv_BTC, kpe_BTR, position, start, cache)
        elif cache is None or cache.length == 0:
            # Prefill with no past tokens (and training): the naive formulation;
            # the latent is what gets cached.
            if cache is not None:
                cache.append(latent)
            o_BHTF = self._naive(q_nope_BHTN, q_pe_BHTR, ckv_BTC, kpe_BTR, position, start, None)
        else:
            parts = cache.append(latent)
            kpe_BSR = parts[1] if self.r > 0 else kpe_BTR
            if self.decode == "absorbed":
                o_BHTF = self._absorbed(q_nope_BHTN, q_pe_BHTR, parts[0], kpe_BSR, position)
            else:  # naive-latent: re-expand every cached token
                o_BHTF = self._naive(q_nope_BHTN, q_pe_BHTR, parts[0].to(x_BTD.dtype), kpe_BSR.to(x_BTD.dtype),
                                     position, start, None)
        return self.wo(o_BHTF.transpose(1, 2).reshape(b, t, self.h * self.f))

    def _naive(self, q_nope_BHTN, q_pe_BHTR, ckv_BSC, kpe_BSR, position, start, cache):
        """latent.cpp naive: k = [W_UK c ; k_pe], v = W_UV c, ordinary attention.
        ckv/kpe hold the new tokens, or (naive-latent) every cached token."""
        b, s_in, t = ckv_BSC.size(0), ckv_BSC.size(1), q_nope_BHTN.size(2)
        kv_BSHX = self.wkv_b(ckv_BSC).view(b, s_in, self.h, self.n + self.f)
        k_nope_BHSN = kv_BSHX.narrow(-1, 0, self.n).transpose(1, 2)
        v_BSHF = kv_BSHX.narrow(-1, self.n, self.f)
        q_nope = q_nope_BHTN
        if self.coupled:
            q_nope = position.rotate(q_nope, start)
            k_nope_BHSN = position.rotate(k_nope_BHSN, start)
        kpe_BHSR = kpe_BSR.unsqueeze(1).expand(b, self.h, s_in, self.r)  # one rotary key for all heads
        q_BHTE = torch.cat([q_nope, q_pe_BHTR], -1)
        k_BHSE = torch.cat([k_nope_BHSN, kpe_BHSR], -1)
        v_BHSF = v_BSHF.transpose(1, 2)
        if cache is not None:
            k_all, v_all = cache.append([k_BHSE.transpose(1, 2), v_BSHF])
            k_BHSE, v_BHSF = k_all.transpose(1, 2), v_all.transpose(1, 2)
        s = k_BHSE.size(2)
        bias = position.score_bias(self.h, s - t, t, s, _accumulation_dtype(q_BHTE.dtype), q_BHTE.device)
        return inner_attention(q_BHTE, k_BHSE, v_BHSF, self.softmax_scale(), bias, self.backend)

    def _absorbed(self, q_nope_BHTN, q_pe_BHTR, ckv_BSC, kpe_BSR, position):
        """latent.cpp absorbed: attend in latent space, in fp32 (fp64 for fp64)."""
        t, s = q_nope_BHTN.size(2), ckv_BSC.size(1)
        ct = _accumulation_dtype(q_nope_BHTN.dtype)
        with _no_autocast(ckv_BSC.device):
            w_HXC = self.wkv_b.weight.to(ct).view(self.h, self.n + self.f, self.c)
            w_uk_HNC, w_uv_HFC = w_HXC.narrow(1, 0, self.n), w_HXC.narrow(1, self.n, self.f)
            ckv = ckv_BSC.to(ct)
            q_lat_BHTC = torch.einsum("bhtn,hnc->bhtc", q_nope_BHTN.to(ct), w_uk_HNC)
            scores_BHTS = torch.einsum("bhtc,bsc->bhts", q_lat_BHTC, ckv)
            if self.r > 0:
                scores_BHTS = scores_BHTS + torch.einsum("bhtr,bsr->bhts", q_pe_BHTR.to(ct), kpe_BSR.to(ct))
            scores_BHTS = scores_BHTS * self.softmax_scale()
            bias = position.score_bias(self.h, s - t, t, s, ct, ckv.device)
            if bias is not None:
                scores_BHTS = scores_BHTS + bias
            scores_BHTS = scores_BHTS.masked_fill(causal_mask(t, s, ckv.device).logical_not(), float("-inf"))
            p_BHTS = torch.softmax(scores_BHTS, -1)
            o_lat_BHTC = torch.einsum("bhts,bsc->bhtc", p_BHTS, ckv)
            o_BHTF = torch.einsum("bhtc,hfc->bhtf", o_lat_BHTC, w_uv_HFC)
        return o_BHTF.to(q_nope_BHTN.dtype)


def make_attention(c: dict) -> nn.Module:
    return LatentAttention(c) if c["attention"] == "mla" else GroupedAttention(c)


# ----------------------------------------------------------------- model


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def resolved_d_ff(c: dict) -> int:
    """transformer.cpp resolved_d_ff: with match_params the MLP takes what the
    attention variant saves against MHA of the same shape (or gives what it spends)."""
    d_ff = c["d_ff"] if c["d_ff"] > 0 else default_d_ff(c["mlp"], c["d_model"])
    if not c["match_params"] or c["attention"] == "mha":
        return d_ff
    mha = resolve_config({k: v for k, v in c.items() if k in ("n_layers", "d_model", "n_heads", "head_dim")})
    with torch.device("meta"):
        delta = _count(make_attention(mha)) - _count(make_attention(c))
    d_ff += _llround(delta / mlp_params(c["mlp"], c["d_model"], 1))
    if d_ff < 1:
        raise ValueError(f"attention {c['attention']!r} has {-delta} more parameters per layer than MHA, "
                         "more than the MLP holds")
    return d_ff


class Block(nn.Module):
    """transformer.cpp BlockImpl: x + attn(norm1 x), then + mlp(norm2 .)."""

    def __init__(self, c: dict, d_ff: int):
        super().__init__()
        self.norm1 = Norm(c["norm"], c["d_model"])
        self.attn = make_attention(c)
        self.norm2 = Norm(c["norm"], c["d_model"])
        self.mlp = Mlp(c["mlp"], c["d_model"], d_ff)

    def forward(self, x_BTD, position: Position, start: int, cache: LayerCache | None):
        x = x_BTD + self.attn(self.norm1(x_BTD), position, start, cache)
        return x + self.mlp(self.norm2(x))


class TransformerLM(nn.Module):
    """transformer.cpp TransformerLMImpl, with attnlab's parameter names."""

    def __init__(self, cfg: dict):
        super().__init__()
        c = resolve_config(cfg)
        self.config = c
        self.d_ff = resolved_d_ff(c)
        self.wte = nn.Embedding(c["vocab_size"], c["d_model"])
        self.position = make_position(c)
        self.blocks = []
        for i in range(c["n_layers"]):
            block = Block(c, self.d_ff)
            self.add_module(f"block{i}", block)
            self.blocks.append(block)
        self.norm_f = Norm(c["norm"], c["d_model"])
        if not c["tie_embeddings"]:
            self.lm_head = _linear(c["d_model"], c["vocab_size"])
        # GPT-2 init, in attnlab's order: N(0, 0.02) for every matrix, then the
        # residual projections N(0, 0.02 / sqrt(2 n_layers)).
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, 0.02)
            residual_std = 0.02 / math.sqrt(2.0 * c["n_layers"])
            for block in self.blocks:
                block.attn.output_weight().normal_(0.0, residual_std)
                block.mlp.down.weight.normal_(0.0, residual_std)

    def forward(self, tokens_BT: torch.Tensor, cache: KvCache | None = None) -> torch.Tensor:
        """Logits [B, T, V]; with a cache the tokens sit at positions
        cache.length .. and every layer reads and extends its cache."""
        start = cache.length if cache is not None else 0
        x = self.position.embed(self.wte(tokens_BT), start)
        for i, block in enumerate(self.blocks):
            x = block(x, self.position, start, cache.layers[i] if cache is not None else None)
        x = self.norm_f(x)
        return torch.matmul(x, self.wte.weight.t()) if self.config["tie_embeddings"] else self.lm_head(x)

    def set_decode(self, mode: str):
        """MLA: naive | absorbed | naive-latent (allocate the cache after); a no-op for grouped attention."""
        for block in self.blocks:
            if isinstance(block.attn, LatentAttention):
                block.attn.set_decode(mode)

    def cache_layouts(self):
        return [block.attn.cache_layout() for block in self.blocks]

    def make_cache(self, batch: int, max_len: int, dtype: torch.dtype | None = None) -> KvCache:
        dtype = dtype or CACHE_DTYPES[self.config["cache_dtype"]]
        return KvCache(self.cache_layouts(), batch, max_len, dtype, self.wte.weight.device)

    def kv_elements_per_token(self) -> int:
        return sum(sum(math.prod(shape) for _, shape in layout) for layout in self.cache_layouts())

    def n_params_attention(self) -> int:
        return sum(_count(block.attn) for block in self.blocks)

    def flops_per_token(self, seq_len: int) -> float:
        """train/mfu.cpp model_flops_per_token: 6 N (N without lookup tables:
        the learned position table, and wte when untied) + 6 L T H (d_qk + d_v)."""
        c = self.config
        n = sum(p.numel() for name, p in self.named_parameters()
                if not (name.startswith("position.") or (not c["tie_embeddings"] and name.startswith("wte."))))
        d_qk, d_v = (c["nope_dim"] + c["rope_dim"], c["v_dim"]) if c["attention"] == "mla" else (c["head_dim"],) * 2
        return 6.0 * n + 6.0 * c["n_layers"] * seq_len * c["n_heads"] * (d_qk + d_v)


def build_model(cfg: dict) -> TransformerLM:
    """attnlab's TransformerLM for a config (keys and defaults: DEFAULTS)."""
    return TransformerLM(cfg)


def param_count(model: nn.Module) -> int:
    """TransformerLMImpl::n_params: every trainable parameter once (the tied
    head is the embedding matrix itself)."""
    return _count(model)


# ----------------------------------------------------------------- training recipe


def make_adamw(model: nn.Module, optim: dict | None = None, **kwargs) -> torch.optim.AdamW:
    """train/optimizer.cpp make_adamw: decay on tensors of dim >= 2, none on
    vectors (norm gains, biases). kwargs go to torch.optim.AdamW (foreach, fused)."""
    o = {**OPTIM_DEFAULTS, **(optim or {})}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": o["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], **kwargs)


def learning_rate(step: int, total_steps: int, optim: dict | None = None) -> float:
    """train/schedule.cpp learning_rate: linear warmup, then cosine (or wsd,
    constant) from lr to min_lr over the remaining steps."""
    o = {**OPTIM_DEFAULTS, **(optim or {})}
    peak, warmup = o["lr"], o["warmup_steps"]
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if o["schedule"] == "constant":
        return peak
    progress = min(max((step - warmup) / max(1, total_steps - warmup), 0.0), 1.0)
    if o["schedule"] == "wsd":
        cooldown = 0.2
        return peak if progress < 1.0 - cooldown else o["min_lr"] + (peak - o["min_lr"]) * (1.0 - progress) / cooldown
    return o["min_lr"] + 0.5 * (peak - o["min_lr"]) * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------- checkpoints


def load_checkpoint(model: nn.Module, path: str | pathlib.Path):
    """Copies an attnlab checkpoint's weights (checkpoints/step-N.pt, written by
    train/checkpoint.cpp through Module::save into a LibTorch archive) into the
    reference, strictly by name. Returns the archive (its `optimizer` holds
    the AdamW groups and state)."""
    archive = torch.jit.load(str(path), map_location="cpu")
    state = {name: t for name, t in archive.model.named_parameters()}
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    return archive
