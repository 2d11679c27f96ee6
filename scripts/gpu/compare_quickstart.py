#!/usr/bin/env python3
"""The quickstart trained on a GPU against the CPU reference, per attention.

Reads two `attnlab collect` tables (summary_configs.csv): the GPU sweep's and
results/reference/quickstart/summary_configs.csv (fp32 on the CPU, 3 seeds).
Each attention's final validation loss (mean over seeds) must lie within
3 standard errors of the difference plus 0.02 nats (bf16 against fp32):
    |gpu - cpu| <= 3 * sqrt(std_gpu^2 / n_gpu + std_cpu^2 / n_cpu) + 0.02
Prints one line per attention and exits 1 if any lies outside (0 with
--report-only, as the CPU rehearsal's 20-step runs always do).
"""
import argparse
import csv
import math
import sys


def table(path):
    with open(path, newline="") as f:
        return {row["attention"]: row for row in csv.DictReader(f)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gpu")
    ap.add_argument("cpu")
    ap.add_argument("--report-only", action="store_true")
    a = ap.parse_args()
    gpu, cpu = table(a.gpu), table(a.cpu)
    outside = 0
    print("band: |gpu - cpu| <= 3 * sqrt(s_gpu^2/n_gpu + s_cpu^2/n_cpu) + 0.02 (final val loss, nats)")
    for attention, g in gpu.items():
        if attention not in cpu:
            print(f"outside {attention}: no CPU reference row")
            outside += 1
            continue
        c = cpu[attention]
        gm, gs, gn = float(g["final_val_loss_mean"]), float(g["final_val_loss_std"] or 0), int(g["n_runs"])
        cm, cs, cn = float(c["final_val_loss_mean"]), float(c["final_val_loss_std"] or 0), int(c["n_runs"])
        band = 3 * math.sqrt(gs * gs / gn + cs * cs / cn) + 0.02
        ok = abs(gm - cm) <= band
        outside += not ok
        print(f"{'within' if ok else 'outside'} {attention}: gpu {gm:.4f} +- {gs:.4f} (n={gn}), "
              f"cpu {cm:.4f} +- {cs:.4f} (n={cn}), |diff| {abs(gm - cm):.4f}, band {band:.4f}")
    return 0 if a.report_only or outside == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
