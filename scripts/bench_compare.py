#!/usr/bin/env python3
"""attnlab against PyTorch, side by side, on the same device, interleaved.

For each benchmark case (../shared/reference/BENCHMARKS.md) this runs
`attnlab bench ...` (figures appended to OUT/<device>.h5, one row per round)
and the PyTorch reference of the same model (scripts/reference/bench_ref.py)
eager and under torch.compile, each as its own process, in --rounds rounds
(default 5): every round runs attnlab, then eager, then compile, each for
--steps timed steps (default 20) after --warmup (default 10), so that load
from elsewhere on the machine slows all three alike rather than one. Each
round gives the ratios attnlab / eager and attnlab / compile of that round's
medians; the table prints, per case, the median over rounds of each
implementation's median ms, the median of the per-round ratios (below 1:
attnlab is faster) and their spread (min..max over rounds), and writes it
to OUT/compare.csv. Reference figures go to OUT/reference.jsonl, one line
per process with its "case" and "round". torch.compile compiles again in
every round's process, inside the untimed warm-up (inductor's on-disk cache
makes later rounds' compiles quicker).

Cases:
  --smoke  (CI, CPU)  B4 at a small shape, and B5 for 2 rounds of 5 steps.
  cpu                 B4, B5 (nanoGPT's CPU recipe, 2 threads), and decode
                      at S=512 for MHA and MLA (naive, absorbed).
  cuda                B1, B2 for MHA, GQA-4, MQA and MLA, B3 for the same
                      variants at S in {1k, 4k, 16k} and B in {1, 64}, B4.
B4 runs once, not per round, and fails the script (exit 1) if any variant's
bytes per token disagree; so does attnlab failing. A reference that cannot
run (torch.compile failing) in a round leaves that round without its ratio
and is reported in the note with its reason and rounds, never dropped.

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
import time

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
    # Under a --budget the cases run in this order, so the ones that decide
    # the targets come first: B1, B3 at S=4k (MHA, MLA naive and absorbed:
    # "absorbed >= 3x naive", the bandwidth target), B2 for MHA and MLA, then
    # the rest.
    variants = [("mha", 0), ("gqa", 4), ("mqa", 0), ("mla", 0)]
    b2 = {kind: case(f"B2 train {kind}", "train",
                     shape(12, 12, 768, attention=kind, kv_heads=kv, seq=1024, batch=8, dtype="bf16", device="cuda"),
                     preset="b2") for kind, kv in variants}
    b3 = []
    for s_len in ([1024, 4096] if smoke else [1024, 4096, 16384]):
        for batch in (1, 64):
            for kind, kv in variants + [("mla", -1)]:
                decode = "naive" if kv == -1 else ("absorbed" if kind == "mla" else "")
                sh = shape(12, 12, 768, attention=kind, kv_heads=max(kv, 0), batch=batch, dtype="bf16",
                           device="cuda")
                extra = ["--context", str(s_len)] + (["--decode", decode] if decode else [])
                ref = ["--context", str(s_len)] + (["--mla-decode", decode] if decode else [])
                b3.append(case(f"B3 decode {kind}{'-' + decode if decode else ''} S={s_len} B={batch}", "decode",
                               sh, extra, ref, preset="b3"))
    first_b3 = [c for c in b3 if "S=4096" in c["name"] and c["name"].split()[2] in ("mha", "mla-naive", "mla-absorbed")]
    out.append(case("B4 kv bytes", "kv", shape(12, 12, 768, device="cuda", dtype="bf16")))
    out.append(case("B1 train mha", "train", shape(6, 6, 384, seq=256, batch=64, dtype="bf16", device="cuda"),
                    preset="b1"))
    out += first_b3 + [b2["mha"], b2["mla"]]
    out += [c for c in b3 if c not in first_b3] + [b2["gqa"], b2["mqa"]]
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


def why(p) -> str:
    """A failed process's reason: its last line of output, else its status."""
    out = p.stdout.strip()
    return out.splitlines()[-1] if out else f"exit {p.returncode}"


def rounds_text(numbers: list[int], total: int) -> str:
    return f"round{'s' if len(numbers) > 1 else ''} {','.join(map(str, numbers))} of {total}"


def kv_rows(h5: pathlib.Path) -> int:
    if not h5.exists():
        return 0
    with h5py.File(h5, "r") as f:
        return len(f["kv"]["formula_bytes_per_token"]) if "kv" in f else 0


def check_kv(c, a, h5) -> dict:
    """B4, run once: bytes per token three ways, for every variant this run wrote."""
    before = kv_rows(h5)
    p = run([a.bin] + attnlab_args(c, a.steps, a.warmup, h5))
    if p.returncode != 0:
        return {"case": c["name"], "attnlab_ms": "failed", "note": f"attnlab failed: {why(p)}", "_failed": True}
    with h5py.File(h5, "r") as f:
        g = f["kv"]
        formula, layout, measured = (g[k][before:] for k in ("formula_bytes_per_token", "layout_bytes_per_token",
                                                              "measured_bytes_per_token"))
    n = len(formula)
    equal = n > 0 and all(x == y == z for x, y, z in zip(formula, layout, measured))
    return {"case": c["name"], "rounds": "1", "note": f"all {n} variants equal" if equal else "MISMATCH",
            "_failed": not equal}


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


def compare(c, a, h5) -> dict:
    """One case, interleaved: each round runs attnlab, eager, compile in turn,
    and takes the ratios of that round's medians; the row gives the median
    over rounds of each implementation's median and of each ratio, and the
    ratios' min..max over rounds."""
    impls = [("eager", False)] + ([] if a.no_compile else [("compile", True)])
    mine: list[float] = []
    theirs = {impl: [] for impl, _ in impls}         # medians of the rounds it ran
    ratios = {impl: [] for impl, _ in impls}         # ratios of the rounds both ran
    failures = {impl: {} for impl, _ in impls}       # reason -> rounds
    notes, attnlab_failed = [], False
    for r in range(1, a.rounds + 1):
        print(f"\n== {c['name']}: round {r} of {a.rounds}", flush=True)
        p = run([a.bin] + attnlab_args(c, a.steps, a.warmup, h5))
        if p.returncode != 0:
            # attnlab's own failure fails the script; later rounds would only repeat it.
            notes.append(f"attnlab failed in round {r}: {why(p)}")
            attnlab_failed = True
            break
        ms = last_row(h5, c["bench"], "ms_per_step_median")
        mine.append(ms)
        said = [f"attnlab {ms:.3f} ms"]
        for impl, compiled in impls:
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                p = run([sys.executable, str(REF)] + ref_args(c, a.steps, a.warmup, compiled, tmp.name))
                if p.returncode != 0:
                    failures[impl].setdefault(why(p), []).append(r)
                    said.append(f"{impl} failed")
                    continue
                ref = json.loads(pathlib.Path(tmp.name).read_text())
            ref["case"], ref["round"] = c["name"], r
            with open(a.out / "reference.jsonl", "a") as f:
                f.write(json.dumps(ref) + "\n")
            t = ref["ms_per_step_median"]
            theirs[impl].append(t)
            ratios[impl].append(ms / t)
            said.append(f"{impl} {t:.3f} ms (attnlab/{impl} {ms / t:.2f})")
        print(f"-- round {r}: " + ", ".join(said), flush=True)

    row = {"case": c["name"], "rounds": str(len(mine)) if not attnlab_failed else f"{len(mine)} of {a.rounds}",
           "_failed": attnlab_failed}
    row["attnlab_ms"] = f"{statistics.median(mine):.3f}" if mine else "failed"
    if a.no_compile:
        row["compile_ms"] = "skipped (--no-compile)"
    for impl, _ in impls:
        if theirs[impl]:
            row[f"{impl}_ms"] = f"{statistics.median(theirs[impl]):.3f}"
            row[f"attnlab/{impl}"] = f"{statistics.median(ratios[impl]):.2f}"
            row[f"attnlab/{impl} spread"] = spread(ratios[impl])
        elif failures[impl]:
            row[f"{impl}_ms"] = "n/a"
        for reason, rs in failures[impl].items():
            notes.append(f"{impl} failed in {rounds_text(rs, len(mine))}, no ratio there: {reason}")
    row["note"] = "; ".join(notes)
    return row


COLUMNS = ["case", "rounds", "attnlab_ms", "eager_ms", "compile_ms", "attnlab/eager", "attnlab/eager spread",
           "attnlab/compile", "attnlab/compile spread", "note"]


def write_table(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})


def print_table(rows):
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in COLUMNS}
    print("\n" + "  ".join(k.ljust(widths[k]) for k in COLUMNS).rstrip())
    for r in rows:
        print("  ".join(str(r.get(k, "")).ljust(widths[k]) for k in COLUMNS).rstrip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the attnlab binary")
    ap.add_argument("--device", choices=["cpu", "cuda"], required=True)
    ap.add_argument("--smoke", action="store_true", help="a few steps at small sizes (CI)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per case (default 5; --smoke: 2)")
    ap.add_argument("--steps", type=int, help="timed steps per process, each round (default 20; --smoke: 5)")
    ap.add_argument("--warmup", type=int, help="untimed steps per process, each round (default 10; --smoke: 2)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile reference")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "results" / "bench")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds: start no new case after this long (the rest are listed as not run); 0: no limit")
    a = ap.parse_args()
    for name, full, smoke in (("rounds", 5, 2), ("steps", 20, 5), ("warmup", 10, 2)):
        if getattr(a, name) is None:
            setattr(a, name, smoke if a.smoke else full)
    if a.rounds < 1 or a.steps < 1:
        ap.error("--rounds and --steps must be at least 1")
    if a.warmup < (0 if a.no_compile else 1):
        ap.error("--warmup must be at least 1 for torch.compile (its first step compiles), else at least 0")
    a.out.mkdir(parents=True, exist_ok=True)
    h5 = a.out / f"{a.device}.h5"
    deadline = time.monotonic() + a.budget if a.budget else None
    rows = []
    for c in cases(a.device, a.smoke):
        if deadline is not None and time.monotonic() > deadline:
            rows.append({"case": c["name"], "note": f"not run: --budget {a.budget:.0f} s spent", "_failed": False})
            continue
        if c["bench"] == "kv":
            print(f"\n== {c['name']}", flush=True)
            rows.append(check_kv(c, a, h5))
        else:
            rows.append(compare(c, a, h5))
        write_table(rows, a.out / "compare.csv")  # after every case: a run cut off keeps what finished
    failed = any(r.get("_failed") for r in rows)
    print_table(rows)
    print(f"\nattnlab's figures: {h5}; the reference's: {a.out / 'reference.jsonl'}; this table: {a.out / 'compare.csv'}")
    print(f"{a.rounds} interleaved round(s) of {a.steps} timed steps after {a.warmup} warm-up, per process; ms: the "
          "median over rounds of each one's median; ratios: the median over rounds of attnlab / PyTorch within a "
          "round (below 1: attnlab is faster), spread: their min..max")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
