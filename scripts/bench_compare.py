#!/usr/bin/env python3
"""attnlab against PyTorch, side by side, on the same device in the same run.

For each benchmark case (../shared/reference/BENCHMARKS.md) this runs
`attnlab bench ...` (figures appended to OUT/<device>.h5) and the PyTorch
reference of the same model (scripts/reference/bench_ref.py) eager and under
torch.compile, then prints one table with the medians and the ratios
attnlab / eager and attnlab / compile (below 1: attnlab is faster), and
writes it to OUT/compare.csv. Reference figures go to OUT/reference.jsonl.

Cases:
  --smoke  (CI, CPU)  B4 at a small shape, and B5 with a handful of steps.
  cpu                 B4, B5 (nanoGPT's CPU recipe, 2 threads), and decode
                      at S=512 for MHA and MLA (naive, absorbed).
  cuda                B1, B2 for MHA, GQA-4, MQA and MLA, B3 for the same
                      variants at S in {1k, 4k, 16k} and B in {1, 64}, B4.
A reference that cannot run (torch.compile failing) is reported in the
table with its reason, never dropped. B4 fails the script (exit 1) if any
variant's bytes per token disagree.

Run through scripts/bench.sh, which builds attnlab first.
"""
from __future__ import annotations

import argparse
import csv
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

import h5py

ROOT = pathlib.Path(__file__).resolve().parents[1]
REF = ROOT / "scripts" / "reference" / "bench_ref.py"


def case(name, bench, shape, attnlab_extra=(), ref_extra=(), preset=None):
    return {"name": name, "bench": bench, "shape": shape, "attnlab_extra": list(attnlab_extra),
            "ref_extra": list(ref_extra), "preset": preset}


def shape(layers, heads, d_model, attention="mha", kv_heads=0, seq=None, batch=None, dtype="fp32",
          device="cpu", threads=0):
    return dict(layers=layers, heads=heads, d_model=d_model, attention=attention, kv_heads=kv_heads, seq=seq,
                batch=batch, dtype=dtype, device=device, threads=threads)


def cases(device: str, smoke: bool):
    out = []
    if device == "cpu":
        b5 = shape(4, 4, 128, seq=64, batch=12, threads=2)
        out.append(case("B4 kv bytes", "kv", shape(4, 4, 128)))
        out.append(case("B5 train mha", "train", b5, preset="b5"))
        if not smoke:
            for decode in ("", "naive", "absorbed"):
                attention = "mla" if decode else "mha"
                s = shape(4, 4, 128, attention=attention, batch=4, threads=2)
                extra = ["--context", "512"] + (["--decode", decode] if decode else [])
                ref = ["--context", "512"] + (["--mla-decode", decode] if decode else [])
                out.append(case(f"decode {attention}{'-' + decode if decode else ''} S=512 B=4", "decode", s,
                                extra + ["model.max_seq_len=1024"], ref))
        return out
    variants = [("mha", 0), ("gqa", 4), ("mqa", 0), ("mla", 0)]
    out.append(case("B4 kv bytes", "kv", shape(12, 12, 768, device="cuda", dtype="bf16")))
    out.append(case("B1 train mha", "train", shape(6, 6, 384, seq=256, batch=64, dtype="bf16", device="cuda"),
                    preset="b1"))
    for kind, kv in variants:
        out.append(case(f"B2 train {kind}", "train",
                        shape(12, 12, 768, attention=kind, kv_heads=kv, seq=1024, batch=8, dtype="bf16",
                              device="cuda"), preset="b2"))
    for s_len in ([1024, 4096] if smoke else [1024, 4096, 16384]):
        for batch in (1, 64):
            for kind, kv in variants + [("mla", -1)]:
                decode = "naive" if kv == -1 else ("absorbed" if kind == "mla" else "")
                sh = shape(12, 12, 768, attention=kind, kv_heads=max(kv, 0), batch=batch, dtype="bf16",
                           device="cuda")
                extra = ["--context", str(s_len)] + (["--decode", decode] if decode else [])
                ref = ["--context", str(s_len)] + (["--mla-decode", decode] if decode else [])
                out.append(case(f"B3 decode {kind}{'-' + decode if decode else ''} S={s_len} B={batch}", "decode",
                                sh, extra, ref, preset="b3"))
    return out


def attnlab_args(c, steps, warmup, out_h5):
    s = c["shape"]
    args = ["bench", c["bench"]]
    if c["preset"]:
        args += ["--preset", c["preset"]]
    args += [f"model.n_layers={s['layers']}", f"model.n_heads={s['heads']}", f"model.d_model={s['d_model']}",
             f"attention={s['attention']}", f"train.device={s['device']}", f"train.dtype={s['dtype']}"]
    if s["kv_heads"]:
        args.append(f"attention.n_kv_heads={s['kv_heads']}")
    if s["seq"]:
        args += [f"train.seq_len={s['seq']}", f"model.max_seq_len={s['seq']}"]
    if s["batch"] and c["bench"] == "train":
        args.append(f"train.batch_size={s['batch']}")
    if s["batch"] and c["bench"] == "decode":
        args += ["--batch", str(s["batch"])]
    if s["threads"]:
        args.append(f"train.threads={s['threads']}")
    if c["bench"] != "kv":
        args += ["--steps", str(steps), "--warmup", str(warmup)]
    return args + c["attnlab_extra"] + ["--out", str(out_h5)]


def ref_args(c, steps, warmup, compiled, json_path):
    s = c["shape"]
    args = [c["bench"], "--layers", str(s["layers"]), "--heads", str(s["heads"]), "--d-model", str(s["d_model"]),
            "--attention", s["attention"], "--batch", str(s["batch"]), "--steps", str(steps), "--warmup",
            str(warmup), "--dtype", s["dtype"], "--device", s["device"], "--json", str(json_path)]
    if s["kv_heads"]:
        args += ["--kv-heads", str(s["kv_heads"])]
    if s["seq"]:
        args += ["--seq", str(s["seq"])]
    if s["threads"]:
        args += ["--threads", str(s["threads"])]
    if compiled:
        args.append("--compile")
    return args + c["ref_extra"]


def last_row(h5: pathlib.Path, group: str, column: str) -> float:
    with h5py.File(h5, "r") as f:
        return float(f[group][column][-1])


def run(cmd):
    print(f"$ {' '.join(cmd)}", flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(p.stdout)
    return p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the attnlab binary")
    ap.add_argument("--device", choices=["cpu", "cuda"], required=True)
    ap.add_argument("--smoke", action="store_true", help="a few steps at small sizes (CI)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile reference")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "results" / "bench")
    a = ap.parse_args()
    steps, warmup = (5, 2) if a.smoke else (50, 10)
    a.out.mkdir(parents=True, exist_ok=True)
    h5 = a.out / f"{a.device}.h5"
    rows, failed = [], False
    for c in cases(a.device, a.smoke):
        print(f"\n== {c['name']}", flush=True)
        p = run([a.bin] + attnlab_args(c, steps, warmup, h5))
        if p.returncode != 0:
            rows.append({"case": c["name"], "attnlab_ms": "failed"})
            failed = True
            continue
        if c["bench"] == "kv":
            with h5py.File(h5, "r") as f:
                g = f["kv"]
                n = 4
                formula, layout, measured = (g[k][-n:] for k in ("formula_bytes_per_token",
                                                                  "layout_bytes_per_token",
                                                                  "measured_bytes_per_token"))
            equal = all(x == y == z for x, y, z in zip(formula, layout, measured))
            rows.append({"case": c["name"], "attnlab_ms": "", "note": "all variants equal" if equal else "MISMATCH"})
            failed |= not equal
            continue
        mine = last_row(h5, c["bench"], "ms_per_step_median")
        row = {"case": c["name"], "attnlab_ms": f"{mine:.3f}"}
        for impl, compiled in (("eager", False), ("compile", True)):
            if compiled and a.no_compile:
                row[f"{impl}_ms"] = "skipped (--no-compile)"
                continue
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                p = run([sys.executable, str(REF)] + ref_args(c, steps, warmup, compiled, tmp.name))
                if p.returncode != 0:
                    reason = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else f"exit {p.returncode}"
                    row[f"{impl}_ms"] = f"n/a ({reason})"
                    continue
                ref = json.loads(pathlib.Path(tmp.name).read_text())
            ref["case"] = c["name"]
            with open(a.out / "reference.jsonl", "a") as f:
                f.write(json.dumps(ref) + "\n")
            theirs = ref["ms_per_step_median"]
            row[f"{impl}_ms"] = f"{theirs:.3f}"
            row[f"attnlab/{impl}"] = f"{mine / theirs:.2f}"
        rows.append(row)

    columns = ["case", "attnlab_ms", "eager_ms", "compile_ms", "attnlab/eager", "attnlab/compile", "note"]
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in columns}
    print("\n" + "  ".join(k.ljust(widths[k]) for k in columns))
    for r in rows:
        print("  ".join(str(r.get(k, "")).ljust(widths[k]) for k in columns))
    with open(a.out / "compare.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in columns})
    print(f"\nattnlab's figures: {h5}; the reference's: {a.out / 'reference.jsonl'}; this table: {a.out / 'compare.csv'}")
    print("ratios are medians attnlab / PyTorch (below 1: attnlab is faster), measured in this run")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
