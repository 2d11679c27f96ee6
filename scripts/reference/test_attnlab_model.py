#!/usr/bin/env python3
"""Checks that attnlab_model.py is attnlab's model, against attnlab's own
numbers. Runs on one CPU thread in a few seconds; checks whose inputs are
missing (no trained runs under results/, no built binary) are skipped and
say so.

1. Shapes and counts: for every finished run under results/*/* (runs with
   RoPE scaling, which the reference does not mirror, are listed and left
   out), the reference built from the run's config has the run file's
   /model n_params, n_params_attention, d_ff and kv_elements_per_token
   (run.h5, written by train/model_info.cpp); and for several configs the
   cache parts of every variant equal `attnlab kv`'s table (MLA's derived
   widths included).
2. Weights and forward: each finished kjv run's newest
   checkpoint (a LibTorch archive, opened with torch.jit.load) loads into the
   reference strictly by name, and the validation losses recomputed exactly
   as eval/context.cpp does (evenly spaced windows of the kjv validation
   split, chunked through the KV cache beyond train.seq_len; MLA's second
   chunk runs the absorbed path) equal the run file's /eval/context rows.
3. The trainer's recipe: the checkpoint's AdamW groups (sizes, betas, eps,
   weight decay) and its last learning rate equal make_adamw and
   learning_rate for the run's config.
4. Decode paths (no attnlab needed): token-by-token decode through the cache
   equals the full forward (fp32, rel. error < 1e-5) for MHA/GQA/MQA and
   MLA naive, absorbed and naive-latent, with RoPE, ALiBi and learned
   positions, SDPA and math backends.
5. Decode against attnlab (needs build/release/bin/attnlab): on a copy of a
   run in a temporary folder, `attnlab eval --context 128 --tokens 256` with
   one token per forward (--decode naive|absorbed for MLA, --chunk 1 else)
   gives the losses the reference's cached decode gives.

Run:  /root/.local/share/attnlab/venv/bin/python scripts/reference/test_attnlab_model.py
(exit status 0 when every check passed or was skipped).
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from attnlab_model import (build_model, config_from_run, learning_rate, load_checkpoint, make_adamw,  # noqa: E402
                           param_count)

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = REPO / "build" / "release" / "bin" / "attnlab"
VAL = REPO / "data" / "kjv" / "byte" / "val.bin"
# One thread here and in attnlab: OpenMP threads spinning on a busy machine
# make the binary's small runs 50x slower.
torch.set_num_threads(1)
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1")


class Skip(Exception):
    """A check whose inputs are not on this machine."""


def scan_runs() -> tuple[list[pathlib.Path], list[str]]:
    """Run directories with a config and a complete run file (a run still
    training rewrites its run file, so it is left alone), and the finished
    runs the reference does not mirror, with the reason."""
    runs, unmirrored = [], []
    for h5 in sorted(REPO.glob("results/*/*/run.h5")):
        with h5py.File(h5, "r") as f:
            if f.attrs.get("status") != "complete" or not (h5.parent / "config.yaml").exists():
                continue
        try:
            config_from_run(h5.parent)
            runs.append(h5.parent)
        except NotImplementedError as why:
            unmirrored.append(f"{h5.parent.relative_to(REPO)} ({why})")
    return runs, unmirrored


def finished_runs() -> list[pathlib.Path]:
    return scan_runs()[0]


def complete_runs() -> list[pathlib.Path]:
    """Finished runs with a checkpoint."""
    return [run for run in finished_runs() if checkpoint_of(run)]


def checkpoint_of(run: pathlib.Path) -> pathlib.Path | None:
    checkpoints = sorted((run / "checkpoints").glob("step-*.pt"))
    return checkpoints[-1] if checkpoints else None


def trained_model(run: pathlib.Path):
    model = build_model(config_from_run(run))
    archive = load_checkpoint(model, checkpoint_of(run))
    return model.eval(), archive


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


# ----------------------------------------------------------------- 1. counts


def test_counts_against_run_files():
    runs, unmirrored = scan_runs()
    for run in unmirrored:
        print(f"  left out, not mirrored: {run}")
    if not runs:
        raise Skip("no runs under results/")
    for run in runs:
        model = build_model(config_from_run(run))
        with h5py.File(run / "run.h5", "r") as f:
            attrs = dict(f["model"].attrs)
        got = {"n_params": param_count(model), "n_params_attention": model.n_params_attention(),
               "d_ff": model.d_ff, "kv_elements_per_token": model.kv_elements_per_token()}
        for key, value in got.items():
            assert value == attrs[key], f"{run.name}: {key} {value} != attnlab's {attrs[key]}"
    print(f"  {len(runs)} runs: n_params, n_params_attention, d_ff, kv_elements_per_token equal")


KV_CONFIGS = [
    {"model": "tiny", "overrides": []},
    {"model": "gpt2_small", "overrides": ["attention.q_rank=256"]},
    {"model": "small", "overrides": ["attention.kv_rank=96", "attention.rope_dim=8", "attention.nope_dim=48"]},
]


def _attnlab_kv_rows(model: str, overrides: list[str]) -> dict[str, str]:
    out = subprocess.run([str(BINARY), "kv", f"model={model}", *overrides], cwd=REPO, env=ONE_THREAD,
                         capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        variant, parts = line[:14].strip(), line[15:43].strip()
        if re.match(r"^(mha|gqa \(K=\d+\)|mqa|mla naive|mla absorbed)$", variant):
            rows[variant] = parts
    return rows


def test_cache_layouts_against_attnlab_kv():
    if not BINARY.exists():
        raise Skip(f"{BINARY} not built")
    configs_dir = REPO / "configs"
    for spec in KV_CONFIGS:
        rows = _attnlab_kv_rows(spec["model"], spec["overrides"])
        shape = yaml.safe_load((configs_dir / "model" / f"{spec['model']}.yaml").read_text())
        base = {k: shape[k] for k in ("n_layers", "d_model", "n_heads", "head_dim", "max_seq_len")}
        base.update({o.split("=")[0].split(".")[1]: int(o.split("=")[1]) for o in spec["overrides"]})
        for variant, parts in rows.items():
            cfg = dict(base, attention=variant.split()[0])
            if cfg["attention"] != "mla":
                cfg = {k: v for k, v in cfg.items() if k in ("n_layers", "d_model", "n_heads", "head_dim",
                                                             "max_seq_len", "attention")}
            if variant.startswith("gqa"):
                cfg["n_kv_heads"] = int(re.search(r"K=(\d+)", variant).group(1))
            if variant.startswith("mla"):
                cfg["mla_decode"] = variant.split()[1]
            with torch.device("meta"):
                layout = build_model(cfg).cache_layouts()[0]
            described = " + ".join(f"{name}[{','.join(map(str, dims))}]" for name, dims in layout)
            assert described == parts, f"model={spec['model']} {spec['overrides']} {variant}: {described} != {parts}"
    print(f"  {len(KV_CONFIGS)} configs x 5 variants: cache parts equal `attnlab kv`")


# ----------------------------------------------------------------- 2. forward


def _val_tokens() -> torch.Tensor:
    return torch.from_numpy(np.fromfile(VAL, dtype="<u2").astype(np.int64))


def context_loss(model, val: torch.Tensor, length: int, token_budget: int, chunk: int, batch: int = 8) -> float:
    """eval/context.cpp evaluate_context: mean nats per token over windows of
    length + 1 tokens evenly spaced through the split, each run through the
    model `chunk` tokens at a time (one forward without a cache if chunk >= length)."""
    n = max(1, (token_budget + length - 1) // length)
    room = val.numel() - (length + 1)
    starts = [0 if n == 1 else room * i // (n - 1) for i in range(n)]
    nats = 0.0
    with torch.no_grad():
        for w0 in range(0, n, batch):
            tokens = torch.stack([val[s:s + length + 1] for s in starts[w0:w0 + batch]])
            inputs, targets = tokens[:, :length], tokens[:, 1:]
            if chunk >= length:
                logits = model(inputs)
            else:
                cache = model.make_cache(inputs.size(0), length)
                logits = torch.cat([model(inputs[:, f:f + chunk], cache) for f in range(0, length, chunk)], 1)
            losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                                     reduction="none")
            nats += losses.double().sum().item()
    return nats / (n * length)


def _same_corpus(run: pathlib.Path) -> bool:
    meta = yaml.safe_load((VAL.parent / "meta.yaml").read_text())
    with h5py.File(run / "run.h5", "r") as f:
        return f["data"].attrs.get("corpus_sha256") == meta["corpus_sha256"]


def test_checkpoint_losses_against_run_files():
    if not VAL.exists():
        raise Skip(f"{VAL} not prepared")
    val, compared, worst = _val_tokens(), 0, 0.0
    for run in complete_runs():
        if not _same_corpus(run):
            continue
        with h5py.File(run / "run.h5", "r") as f:
            if "eval/context" not in f:
                continue
            g = f["eval/context"]
            rows = [{k: g[k][i] for k in ("context", "chunk", "decode", "token_budget", "step", "loss")}
                    for i in range(g["context"].shape[0])]
        model, archive = trained_model(run)
        step = int(archive.step)
        for row in rows:
            # Full-window rows of the checkpoint's step, small enough to be quick.
            if row["decode"] != 0 or row["step"] != step or row["context"] > 256 or row["token_budget"] > 4096:
                continue
            loss = context_loss(model, val, int(row["context"]), int(row["token_budget"]), int(row["chunk"]))
            worst = max(worst, rel(loss, row["loss"]))
            assert rel(loss, row["loss"]) < 1e-6, f"{run.name} context {row['context']}: {loss} != {row['loss']}"
            compared += 1
    if compared == 0:
        raise Skip("no run with /eval/context rows and a checkpoint of their step")
    print(f"  {compared} eval/context rows recomputed from checkpoints: largest relative difference {worst:.1e}")


# ----------------------------------------------------------------- 3. optimizer


def test_optimizer_against_checkpoints():
    runs = complete_runs()
    if not runs:
        raise Skip("no complete run with a checkpoint")
    for run in runs:
        model, archive = trained_model(run)
        optim_cfg = yaml.safe_load((run / "config.yaml").read_text())["optim"]
        total_steps = yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"]
        ours = make_adamw(model, optim_cfg)
        theirs = archive.optimizer.param_groups._c
        assert int(theirs.getattr("param_groups/size")) == len(ours.param_groups)
        # The trainer sets the rate of step s before stepping; the checkpoint
        # after `step` steps holds that of step - 1.
        lr = learning_rate(int(archive.step) - 1, total_steps, optim_cfg)
        for i, group in enumerate(ours.param_groups):
            g = theirs.getattr(f"param_groups/{i}")
            o = g.getattr("options")
            assert int(g.getattr("params/size")) == len(group["params"]), f"{run.name} group {i} size"
            assert tuple(o.getattr("betas")) == group["betas"] and o.getattr("eps") == group["eps"]
            assert o.getattr("weight_decay") == group["weight_decay"], f"{run.name} group {i} weight decay"
            assert rel(o.getattr("lr"), lr) < 1e-12, f"{run.name}: lr {o.getattr('lr')} != {lr}"
    print(f"  {len(runs)} checkpoints: AdamW groups, betas, eps, weight decay and last learning rate equal")


# ----------------------------------------------------------------- 4. decode


DECODE_CONFIGS = [
    {"attention": "mha"},
    {"attention": "gqa", "n_kv_heads": 2, "position": "alibi"},
    {"attention": "mqa", "position": "learned", "backend": "math"},
    {"attention": "mla", "mla_decode": "naive"},
    {"attention": "mla", "mla_decode": "absorbed", "q_rank": 48},
    {"attention": "mla", "mla_decode": "naive-latent"},
    {"attention": "mla", "mla_decode": "absorbed", "rope_mode": "none", "position": "alibi", "norm": "layer"},
    {"attention": "mla", "mla_decode": "naive", "rope_mode": "coupled", "mlp": "swiglu"},
]


def test_decode_equals_full_forward():
    torch.manual_seed(0)
    tokens = torch.randint(0, 256, (2, 24))
    for cfg in DECODE_CONFIGS:
        model = build_model(dict(cfg, n_layers=2, d_model=64, n_heads=4, max_seq_len=32)).eval()
        with torch.no_grad():
            full = model(tokens)
            cache = model.make_cache(2, 24)
            # A prefill of 8 tokens, a chunk of 4, then one token at a time.
            steps = [model(tokens[:, :8], cache), model(tokens[:, 8:12], cache)]
            steps += [model(tokens[:, t:t + 1], cache) for t in range(12, 24)]
        err = ((torch.cat(steps, 1) - full).norm() / full.norm()).item()
        assert err < 1e-5, f"{cfg}: decode differs from the full forward by {err:.1e}"
    print(f"  {len(DECODE_CONFIGS)} configs: prefill + chunk + per-token decode equal the full forward (< 1e-5)")


# ----------------------------------------------------------------- 5. decode vs attnlab


def _attnlab_decode_loss(run: pathlib.Path, args: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / run.name
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".lock"))
        subprocess.run([str(BINARY), "eval", str(copy), "--context", "128", "--tokens", "256", *args], cwd=REPO,
                       env=ONE_THREAD, capture_output=True, text=True, check=True)
        with h5py.File(copy / "run.h5", "r") as f:
            g = f["eval/context"]
            return float(g["loss"][-1])  # the row just written


def test_decode_against_attnlab_eval():
    if not BINARY.exists() or not VAL.exists():
        raise Skip("needs the built binary and the prepared kjv data")
    val, checked = _val_tokens(), []
    for kind in ("mla", "mha", "gqa", "mqa"):
        run = next((r for r in complete_runs() if _same_corpus(r) and config_from_run(r)["attention"] == kind), None)
        if run is None:
            continue
        model, _ = trained_model(run)
        for mode in (("naive", "absorbed") if kind == "mla" else (None,)):
            args = ["--decode", mode] if mode else ["--chunk", "1"]
            theirs = _attnlab_decode_loss(run, args)
            if mode:
                model.set_decode(mode)
            ours = context_loss(model, val, 128, 256, chunk=1)
            assert rel(ours, theirs) < 1e-6, f"{run.name} {args}: {ours} != attnlab's {theirs}"
            checked.append(f"{kind}{' ' + mode if mode else ''}")
    if not checked:
        raise Skip("no complete kjv run with a checkpoint")
    print(f"  per-token decode losses equal `attnlab eval` for: {', '.join(checked)}")


if __name__ == "__main__":
    failed = 0
    for name, check in [(n, f) for n, f in list(globals().items()) if n.startswith("test_")]:
        try:
            print(name)
            check()
            print("  ok")
        except Skip as why:
            print(f"  skipped: {why}")
        except AssertionError as e:
            failed += 1
            print(f"  FAILED: {e}")
    print("all checks passed" if failed == 0 else f"{failed} check(s) failed")
    sys.exit(1 if failed else 0)
