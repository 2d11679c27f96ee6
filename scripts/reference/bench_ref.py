#!/usr/bin/env python3
"""Benchmarks of the PyTorch reference of attnlab's model (attnlab_model.py),
eager or torch.compile, for the side-by-side comparisons of
../shared/reference/BENCHMARKS.md (B1, B2, B3, B5).

  train   full training steps as attnlab's trainer runs them
          (train/trainer.cpp): learning rate from the warmup + cosine
          schedule, zero_grad(set_to_none), forward, cross-entropy on fp32
          logits, backward, gradient clipping at norm 1, AdamW (decay on
          matrices only). Random byte tokens, a pool of 4 batches. bf16 is
          autocast over fp32 master weights, as attnlab's AutocastScope.
  decode  one-token decode steps over a KV cache pre-filled with S tokens of
          random contents, rewound to S before every step so each step sees
          context S; the step ends with the greedy next token. bf16 here
          means bf16 weights and a bf16 cache (no autocast), fp32 all fp32.
          Bytes read per step: every weight once (lookup tables: the rows
          used), plus every layer's cache of S + 1 tokens in the cache dtype.

Medians, p10 and p90 of per-step host times after warm-up, with
torch.cuda.synchronize before every clock reading on CUDA. On the CPU,
torch.set_num_threads(--threads). --compile wraps the model in
torch.compile(fullgraph=True) (inductor; on the CPU it needs a C++
compiler); the first warm-up step, which compiles, is reported as compile_s.
If compiling fails the script exits with status 3 and says why; it never
falls back to eager.

Run (B5, the 2-thread CPU shape):
  PY=/root/.local/share/attnlab/venv/bin/python
  $PY scripts/reference/bench_ref.py train --layers 4 --heads 4 --d-model 128 --seq 64 --batch 12 \\
      --attention mha --steps 20 --warmup 5 --dtype fp32 --device cpu --threads 2 [--compile] --json b5.json
  $PY scripts/reference/bench_ref.py decode --layers 12 --heads 12 --d-model 768 --attention mla \\
      --mla-decode absorbed --context 4096 --batch 64 --steps 50 --warmup 10 --dtype bf16 --device cuda --json d.json

JSON keys: bench, impl ("pytorch-eager" | "torch.compile"), device, torch,
threads, config, ms_per_step_median, ms_per_step_p10, ms_per_step_p90,
tokens_per_s, n_params, steps, warmup; train adds flops_per_token (attnlab's
train/mfu.cpp estimate), tflops, peak_tflops and mfu (null without a peak);
decode adds context, batch, bytes_per_step, gb_per_s; with --compile,
compile_s.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from attnlab_model import build_model, learning_rate, make_adamw, param_count  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Dense peaks in TFLOP/s, first match wins (train/mfu.cpp table_peak_tflops).
PEAKS = [("H100 PCIe", {"bf16": 756.5, "fp32": 51.2}), ("H100", {"bf16": 989.4, "fp32": 66.9}),
         ("H200", {"bf16": 989.4, "fp32": 66.9}), ("A100", {"bf16": 312.0, "fp32": 19.5})]
COMPILE_FAILED = 3


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines() if pathlib.Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"cpu {line.split(':', 1)[1].strip()}"
    return f"cpu {platform.processor() or platform.machine()}"


def peak_tflops(name: str, dtype: str, override: float) -> float | None:
    if override > 0:
        return override
    if "NVL" in name:
        return None
    return next((p[dtype] for key, p in PEAKS if key in name), None)


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, steps: int, warmup: int, device: torch.device, compiling: bool) -> tuple[list[float], float]:
    """Per-step milliseconds after `warmup` steps, and the first warm-up
    step's seconds (where torch.compile compiles). A failure while compiling
    exits with COMPILE_FAILED."""
    first_s = 0.0
    for i in range(warmup):
        t0 = time.perf_counter()
        try:
            step()
            synchronize(device)
        except Exception as e:  # noqa: BLE001 - any failure while compiling is reported as such
            if not compiling:
                raise
            print(f"torch.compile failed ({type(e).__name__}): {e}", file=sys.stderr)
            sys.exit(COMPILE_FAILED)
        if i == 0:
            first_s = time.perf_counter() - t0
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        ms.append(1e3 * (time.perf_counter() - t0))
    return ms, first_s


def model_config(args) -> dict:
    cfg = {"n_layers": args.layers, "d_model": args.d_model, "n_heads": args.heads, "attention": args.attention,
           "n_kv_heads": args.kv_heads, "position": args.position, "vocab_size": 256}
    if args.attention == "mla":
        cfg.update(q_rank=args.q_rank, kv_rank=args.kv_rank, rope_dim=args.rope_dim, nope_dim=args.nope_dim,
                   v_dim=args.v_dim)
        if args.position != "rope":
            cfg["rope_mode"] = "none"
    return cfg


def compiled(model, args):
    return torch.compile(model, fullgraph=True, mode=args.compile_mode) if args.compile else model


def bench_train(args, device) -> dict:
    model = build_model({**model_config(args), "max_seq_len": args.seq}).to(device)
    optimizer = make_adamw(model)
    forward = compiled(model, args)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    vocab = model.config["vocab_size"]
    pool = [torch.randint(0, vocab, (args.batch, args.seq + 1), device=device) for _ in range(4)]
    total_steps = args.warmup + args.steps
    state = {"step": 0, "loss": None}

    def step():
        i = state["step"]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(i, total_steps)
        optimizer.zero_grad(set_to_none=True)
        tokens = pool[i % len(pool)]
        with autocast:
            logits = forward(tokens[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab).float(), tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        state["step"], state["loss"] = i + 1, loss.detach()

    ms, first_s = time_steps(step, args.steps, args.warmup, device, args.compile)
    loss = state["loss"].item()
    if loss != loss or loss in (float("inf"), float("-inf")):
        raise SystemExit(f"the loss is {loss}: the benchmark did not train")
    tokens_per_step = args.batch * args.seq
    flops_per_token = model.flops_per_token(args.seq)
    median_s = statistics.median(ms) / 1e3
    tflops = tokens_per_step * flops_per_token / median_s / 1e12
    name = device_name(device)
    peak = peak_tflops(name, args.dtype, args.peak_tflops)
    return {"config": {**model.config, "d_ff": model.d_ff, "seq": args.seq, "batch": args.batch},
            "n_params": param_count(model), "tokens_per_step": tokens_per_step,
            "tokens_per_s": tokens_per_step / median_s, "flops_per_token": flops_per_token, "tflops": tflops,
            "peak_tflops": peak, "mfu": tflops / peak if peak else None, "final_loss": loss,
            "_ms": ms, "_first_s": first_s}


def bench_decode(args, device) -> dict:
    dtype = DTYPES[args.dtype]
    s = args.context
    model = build_model({**model_config(args), "max_seq_len": s + 1}).to(device, dtype).eval()
    model.set_decode(args.mla_decode)
    cache = model.make_cache(args.batch, s + 1, dtype)
    for layer in cache.layers:
        for store in layer.storage:
            store.normal_()
    forward = compiled(model, args)
    state = {"tokens": torch.randint(0, model.config["vocab_size"], (args.batch, 1), device=device)}

    @torch.no_grad()
    def step():
        cache.length = s
        logits = forward(state["tokens"], cache)
        state["tokens"] = logits[:, -1].argmax(-1, keepdim=True)

    ms, first_s = time_steps(step, args.steps, args.warmup, device, args.compile)
    median_s = statistics.median(ms) / 1e3
    c = model.config
    # Lookup tables are read a row per sequence; everything else once.
    lookups = {"position.wpe"} | ({"wte.weight"} if not c["tie_embeddings"] else set())
    weight_bytes = sum(p.numel() * p.element_size() if n not in lookups else args.batch * p.size(1) * p.element_size()
                       for n, p in model.named_parameters())
    cache_bytes = model.kv_elements_per_token() * (s + 1) * args.batch * dtype.itemsize
    bytes_per_step = weight_bytes + cache_bytes
    return {"config": {**c, "d_ff": model.d_ff, "mla_decode": args.mla_decode if c["attention"] == "mla" else None},
            "n_params": param_count(model), "context": s, "batch": args.batch,
            "tokens_per_s": args.batch / median_s, "weight_bytes": weight_bytes, "cache_bytes": cache_bytes,
            "bytes_per_step": bytes_per_step, "gb_per_s": bytes_per_step / median_s / 1e9,
            "_ms": ms, "_first_s": first_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    for name in ("train", "decode"):
        p = sub.add_parser(name)
        p.add_argument("--layers", type=int, required=True)
        p.add_argument("--heads", type=int, required=True)
        p.add_argument("--d-model", type=int, required=True)
        p.add_argument("--attention", choices=["mha", "gqa", "mqa", "mla"], required=True)
        p.add_argument("--kv-heads", type=int, default=0, help="gqa: key/value heads (0: as the kind implies)")
        p.add_argument("--position", choices=["rope", "alibi", "learned", "none"], default="rope")
        for width in ("q-rank", "kv-rank", "rope-dim", "nope-dim", "v-dim"):
            p.add_argument(f"--{width}", type=int, default=0, help="mla width; 0: attnlab's default")
        p.add_argument("--batch", type=int, required=True)
        p.add_argument("--steps", type=int, default=50)
        p.add_argument("--warmup", type=int, default=10)
        p.add_argument("--dtype", choices=list(DTYPES), default="fp32")
        p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
        p.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
        p.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True) the model")
        p.add_argument("--compile-mode", default="default",
                       choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"])
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--json", type=pathlib.Path, help="write the result here")
        if name == "train":
            p.add_argument("--seq", type=int, required=True)
            p.add_argument("--peak-tflops", type=float, default=0.0, help="device peak for MFU (0: from the table)")
        else:
            p.add_argument("--context", type=int, required=True, help="cached tokens S before each step")
            p.add_argument("--mla-decode", choices=["naive", "absorbed", "naive-latent"], default="absorbed")
    args = parser.parse_args()
    if args.compile and args.warmup < 1:
        parser.error("--compile needs --warmup >= 1: the first step compiles")
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    r = bench_train(args, device) if args.bench == "train" else bench_decode(args, device)
    ms, first_s = r.pop("_ms"), r.pop("_first_s")
    deciles = statistics.quantiles(ms, n=10, method="inclusive")
    result = {"bench": args.bench, "impl": "torch.compile" if args.compile else "pytorch-eager",
              "device": device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "dtype": args.dtype, "ms_per_step_median": statistics.median(ms), "ms_per_step_p10": deciles[0],
              "ms_per_step_p90": deciles[-1], "steps": args.steps, "warmup": args.warmup, **r}
    if args.compile:
        result["compile_mode"], result["compile_s"] = args.compile_mode, first_s
    c = result["config"]
    shape = f"{c['attention']}{' ' + args.mla_decode if args.bench == 'decode' and c['attention'] == 'mla' else ''} " \
            f"L{c['n_layers']} H{c['n_heads']} D{c['d_model']}"
    where = f"{args.dtype} {result['device']} ({result['threads']} threads)"
    if args.bench == "train":
        mfu = f"MFU {100 * r['mfu']:.1f}%" if r["mfu"] is not None else "MFU n/a"
        print(f"train {result['impl']} {shape} T{args.seq} B{args.batch} {where}: "
              f"{result['ms_per_step_median']:.2f} ms/step (p10 {deciles[0]:.2f}, p90 {deciles[-1]:.2f}), "
              f"{r['tokens_per_s']:.0f} tok/s, {r['tflops']:.3f} TFLOP/s, {mfu}, loss {r['final_loss']:.3f}")
    else:
        print(f"decode {result['impl']} {shape} S{args.context} B{args.batch} {where}: "
              f"{result['ms_per_step_median']:.3f} ms/step (p10 {deciles[0]:.3f}, p90 {deciles[-1]:.3f}), "
              f"{r['tokens_per_s']:.0f} tok/s, {r['bytes_per_step'] / 1e6:.2f} MB/step, {r['gb_per_s']:.2f} GB/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
