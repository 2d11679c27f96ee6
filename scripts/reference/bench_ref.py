#!/usr/bin/env python3
"""Benchmarks of the PyTorch reference of attnlab's model (attnlab_model.py),
eager or torch.compile, measured as `attnlab bench` measures attnlab
(framework/bench/bench.cpp), for the side-by-side comparisons of
../shared/reference/BENCHMARKS.md (B1, B2, B3, B5; scripts/bench_compare.py
runs both and prints the ratios).

  train   whole training steps as train/step.cpp takes them:
          zero_grad(set_to_none), forward and cross-entropy on fp32 logits
          (under autocast for bf16, over fp32 master weights), backward,
          gradient clipping at norm 1, AdamW step (decay on matrices only,
          constant learning rate 1e-3; torch.optim.AdamW's defaults: foreach
          on CUDA, a per-tensor loop on the CPU like LibTorch's). Random byte
          tokens 1..255 (never zeros), a pool of 4 batches cycled.
  decode  one-token cached decode steps: a prefill of S random tokens (chunks
          of 1024, eager), then warm-up and timed steps, each appending one
          random token, so timed step i attends over S + warmup + i tokens.
          fp32 weights, under autocast for bf16 (as attnlab); the cache in
          --cache-dtype (default: --dtype, as the B3 preset). Bytes read per
          step: every parameter once in its storage dtype, plus the cache at
          the mean timed length, S + warmup + (steps - 1) / 2 tokens.

Each step is bracketed by device synchronizes (torch.cuda.synchronize on
CUDA) before the host clock reads; the median and nearest-rank p10/p90 of the
timed steps are reported. On the CPU, torch.set_num_threads(--threads).
--compile wraps the model in torch.compile(fullgraph=True) (inductor; on the
CPU it needs a C++ compiler); the first warm-up step, which compiles, is
reported as compile_s. If compiling fails, or torch.compile compiles again
during the timed steps (raise --warmup: decode lengths grow, and dynamo
recompiles once or twice before it treats the length as dynamic), the script
exits with status 3 and one line saying why; it never falls back to eager.

Run (B5, the 2-thread CPU shape):
  PY=/root/.local/share/attnlab/venv/bin/python
  $PY scripts/reference/bench_ref.py train --layers 4 --heads 4 --d-model 128 --seq 64 --batch 12 \\
      --attention mha --steps 20 --warmup 5 --dtype fp32 --device cpu --threads 2 [--compile] --json b5.json
  $PY scripts/reference/bench_ref.py decode --layers 12 --heads 12 --d-model 768 --attention mla \\
      --mla-decode absorbed --context 4096 --batch 64 --steps 50 --warmup 10 --dtype bf16 --device cuda --json d.json

JSON keys: bench, impl ("pytorch-eager" | "torch.compile"), device, torch,
threads, dtype, config, ms_per_step_median, ms_per_step_p10, ms_per_step_p90,
tokens_per_s, n_params, steps, warmup; train adds tokens_per_step,
flops_per_token (attnlab's train/mfu.cpp estimate), tflops, peak_tflops and
mfu (null unless --peak-tflops gives the peak), final_loss; decode adds context, batch,
cache_dtype, weight_bytes, cache_bytes, bytes_per_step, gb_per_s; with
--compile, compile_mode and compile_s.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import platform
import statistics
import sys
import time

import torch
import torch._dynamo
import torch.nn.functional as F
from torch._dynamo.utils import counters

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from attnlab_model import CACHE_DTYPES, OPTIM_DEFAULTS, build_model, make_adamw, param_count  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
BATCH_POOL = 4       # distinct random training batches, cycled (bench.cpp kBatchPool)
COMPILE_FAILED = 3


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return f"cpu {line.split(':', 1)[1].strip()}"
    return f"cpu {platform.processor() or platform.machine()}"


def prefill_chunk(batch: int, heads: int, context: int) -> int:
    """Tokens per prefill forward: fp32 scores [B, H, chunk, S] near 1 GiB, as bench.cpp's prefill."""
    return max(1, min(1024, (1 << 30) // (batch * heads * context * 4)))


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compile_failed(why: str):
    print(f"torch.compile failed: {why}", file=sys.stderr)
    sys.exit(COMPILE_FAILED)


def time_steps(step, steps: int, warmup: int, device: torch.device, compiling: bool) -> tuple[list[float], float]:
    """bench.cpp time_steps: every step between synchronizes; returns the
    timed steps' milliseconds and the first step's seconds (where
    torch.compile compiles)."""
    ms, first_s, graphs = [], 0.0, None
    for i in range(warmup + steps):
        if i == warmup:
            graphs = counters["stats"]["unique_graphs"]
        synchronize(device)
        t0 = time.perf_counter()
        try:
            step(i)
            synchronize(device)
        except Exception as e:  # noqa: BLE001 - any failure under torch.compile is reported as its failure
            if not compiling:
                raise
            lines = str(e).strip().splitlines()
            compile_failed(f"{type(e).__name__}: {lines[0] if lines else ''}")
        elapsed = time.perf_counter() - t0
        if i == 0:
            first_s = elapsed
        if i >= warmup:
            ms.append(1e3 * elapsed)
    if compiling and counters["stats"]["unique_graphs"] != graphs:
        compile_failed(f"it compiled {counters['stats']['unique_graphs'] - graphs} graph(s) during the timed "
                       f"steps; raise --warmup (now {warmup})")
    return ms, first_s


def summarize(ms: list[float]) -> dict:
    """bench.cpp summarize: the median, and p10/p90 by nearest rank."""
    ordered = sorted(ms)

    def at(q):
        return ordered[math.floor(q * (len(ordered) - 1) + 0.5)]

    return {"ms_per_step_median": statistics.median(ordered), "ms_per_step_p10": at(0.1),
            "ms_per_step_p90": at(0.9)}


def model_config(args, max_seq_len: int) -> dict:
    cfg = {"n_layers": args.layers, "d_model": args.d_model, "n_heads": args.heads, "attention": args.attention,
           "n_kv_heads": args.kv_heads, "position": args.position, "vocab_size": 256, "max_seq_len": max_seq_len}
    if args.attention == "mla":
        cfg.update(q_rank=args.q_rank, kv_rank=args.kv_rank, rope_dim=args.rope_dim, nope_dim=args.nope_dim,
                   v_dim=args.v_dim)
        if args.position != "rope":
            cfg["rope_mode"] = "none"
    return cfg


def compiled(model, args):
    if not args.compile:
        return model
    # Past the recompile limit dynamo would run eager silently: fail instead.
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return torch.compile(model, fullgraph=True, mode=args.compile_mode)


def bench_train(args, device) -> dict:
    model = build_model(model_config(args, args.seq)).to(device).train()
    optimizer = make_adamw(model)
    forward = compiled(model, args)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    vocab = model.config["vocab_size"]
    pool = [torch.randint(1, vocab, (args.batch, args.seq + 1), device=device) for _ in range(BATCH_POOL)]
    last = {}

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        tokens = pool[i % BATCH_POOL]
        with autocast:
            logits = forward(tokens[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab).float(), tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), OPTIM_DEFAULTS["grad_clip"])
        optimizer.step()
        last["loss"] = loss.detach()

    ms, first_s = time_steps(step, args.steps, args.warmup, device, args.compile)
    loss = last["loss"].item()
    if not math.isfinite(loss):
        raise SystemExit(f"the loss is {loss}: the benchmark did not train")
    timing = summarize(ms)
    tokens_per_step = args.batch * args.seq
    tokens_per_s = tokens_per_step / (timing["ms_per_step_median"] / 1e3)
    flops_per_token = model.flops_per_token(args.seq)
    tflops = tokens_per_s * flops_per_token / 1e12
    # MFU only against a peak given on the command line: attnlab's table
    # (train/mfu.cpp) is the one source of device peaks.
    peak = args.peak_tflops if args.peak_tflops > 0 else None
    return {**timing, "config": {**model.config, "d_ff": model.d_ff, "seq": args.seq, "batch": args.batch},
            "n_params": param_count(model), "tokens_per_step": tokens_per_step, "tokens_per_s": tokens_per_s,
            "flops_per_token": flops_per_token, "tflops": tflops, "peak_tflops": peak,
            "mfu": tflops / peak if peak else None, "final_loss": loss, "_first_s": first_s}


def bench_decode(args, device) -> dict:
    s, total = args.context, args.context + args.warmup + args.steps
    cache_dtype = CACHE_DTYPES[args.cache_dtype or args.dtype]
    model = build_model({**model_config(args, total), "mla_decode": args.mla_decode}).to(device).eval()
    forward = compiled(model, args)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    vocab = model.config["vocab_size"]
    # One slot more than used: a view spanning the whole storage would make
    # dynamo compile the last step again.
    cache = model.make_cache(args.batch, total + 1, cache_dtype)
    tokens = torch.randint(1, vocab, (args.warmup + args.steps, args.batch, 1), device=device)
    with torch.no_grad(), autocast:
        chunk = prefill_chunk(args.batch, args.heads, s)
        for at in range(0, s, chunk):
            model(torch.randint(1, vocab, (args.batch, min(chunk, s - at)), device=device), cache)

    def step(i):
        with torch.no_grad(), autocast:
            forward(tokens[i], cache)

    ms, first_s = time_steps(step, args.steps, args.warmup, device, args.compile)
    timing = summarize(ms)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    mean_length = s + args.warmup + 0.5 * (args.steps - 1)  # timed step i reads S + warmup + i tokens
    cache_bytes = model.kv_elements_per_token() * cache_dtype.itemsize * mean_length * args.batch
    median_s = timing["ms_per_step_median"] / 1e3
    c = model.config
    return {**timing, "config": {**c, "d_ff": model.d_ff},
            "n_params": param_count(model), "context": s, "batch": args.batch,
            "cache_dtype": args.cache_dtype or args.dtype, "tokens_per_s": args.batch / median_s,
            "weight_bytes": weight_bytes, "cache_bytes": cache_bytes, "bytes_per_step": weight_bytes + cache_bytes,
            "gb_per_s": (weight_bytes + cache_bytes) / median_s / 1e9, "_first_s": first_s}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
            p.add_argument("--peak-tflops", type=float, default=0.0, help="device peak TFLOP/s for MFU (0: no MFU)")
        else:
            p.add_argument("--context", type=int, required=True, help="tokens cached before the warm-up steps")
            p.add_argument("--mla-decode", choices=["naive", "absorbed", "naive-latent"], default="absorbed")
            p.add_argument("--cache-dtype", choices=list(CACHE_DTYPES), help="default: --dtype")
    args = parser.parse_args()
    if args.compile and args.warmup < 1:
        parser.error("--compile needs --warmup >= 1: the first step compiles")
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    return args


def main():
    args = parse_args()
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    r = bench_train(args, device) if args.bench == "train" else bench_decode(args, device)
    first_s = r.pop("_first_s")
    result = {"bench": args.bench, "impl": "torch.compile" if args.compile else "pytorch-eager",
              "device": device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "dtype": args.dtype, "steps": args.steps, "warmup": args.warmup, **r}
    if args.compile:
        result["compile_mode"], result["compile_s"] = args.compile_mode, first_s
    c = result["config"]
    shape = f"{c['attention']}{' ' + c['mla_decode'] if args.bench == 'decode' and c['attention'] == 'mla' else ''}" \
            f" L{c['n_layers']} H{c['n_heads']} D{c['d_model']}"
    where = f"{args.dtype} {result['device']} ({result['threads']} threads)"
    timing = f"{r['ms_per_step_median']:.3f} ms/step (p10 {r['ms_per_step_p10']:.3f}, p90 {r['ms_per_step_p90']:.3f})"
    if args.bench == "train":
        mfu = f"MFU {100 * r['mfu']:.1f}%" if r["mfu"] is not None else "MFU n/a"
        print(f"train {result['impl']} {shape} T{args.seq} B{args.batch} {where}: {timing}, "
              f"{r['tokens_per_s']:.0f} tok/s, {r['tflops']:.3f} TFLOP/s, {mfu}, loss {r['final_loss']:.3f}")
    else:
        print(f"decode {result['impl']} {shape} S{args.context} B{args.batch} {where}, cache {r['cache_dtype']}: "
              f"{timing}, {r['tokens_per_s']:.0f} tok/s, {r['bytes_per_step'] / 1e6:.2f} MB/step, "
              f"{r['gb_per_s']:.2f} GB/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
