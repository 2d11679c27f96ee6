#!/usr/bin/env python3
"""Plots attnlab run files: loss curves, and quality against KV-cache memory.

Usage: plot.py RUN_OR_SWEEP_DIR

Finds every run.h5 under the directory (the directory itself may hold one) and
writes into that directory:
  loss.png               train and validation loss against step, one colour per run
  quality_vs_memory.png  final validation perplexity against KV-cache bytes per
                         token over all layers (log x), when more than one run has both
Prints the paths it wrote. Exit code 2 when no run file is found.
Run-file layout: docs/run-file.md.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def text(value):
    """HDF5 string attributes come back as bytes or str depending on h5py."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def find_runs(root):
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "run.h5" in filenames:
            paths.append(os.path.join(dirpath, "run.h5"))
    return paths


def series(f, group, column):
    path = f"{group}/{column}"
    if path in f and isinstance(f[path], h5py.Dataset):
        values = np.asarray(f[path][...], dtype=np.float64)
        values[~np.isfinite(values)] = np.nan  # a diverged run's inf would wreck the y range
        return values
    return None


def read_run(path, root):
    run_dir = os.path.dirname(os.path.abspath(path))
    name = os.path.relpath(run_dir, os.path.abspath(root))
    if name == ".":
        name = os.path.basename(run_dir)
    with h5py.File(path, "r") as f:
        status = text(f.attrs.get("status", "unknown"))
        model = f["model"].attrs if "model" in f else {}
        summary = f["summary"].attrs if "summary" in f else {}
        run = {
            "name": name,
            "status": status,
            "attention": text(model.get("attention", "?")),
            "kv_bytes": float(model["kv_bytes_per_token"]) if "kv_bytes_per_token" in model else None,
            "final_val_ppl": float(summary["final_val_ppl"]) if "final_val_ppl" in summary else None,
            "train_step": series(f, "train", "step"),
            "train_loss": series(f, "train", "loss"),
            "eval_step": series(f, "eval", "step"),
            "val_loss": series(f, "eval", "val_loss"),
        }
    run["label"] = f"{run['name']} ({run['attention']})"
    if status != "complete":
        run["label"] += f" [{status}]"
    return run


def plot_loss(runs, out):
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        colour = colours[i % len(colours)]
        unfinished = run["status"] != "complete"
        if run["train_step"] is not None and run["train_loss"] is not None:
            ax.plot(run["train_step"], run["train_loss"], color=colour, alpha=0.45, linewidth=1,
                    linestyle=":" if unfinished else "-")
        if run["eval_step"] is not None and run["val_loss"] is not None:
            ax.plot(run["eval_step"], run["val_loss"], color=colour, marker="o", markersize=3,
                    linestyle="--" if unfinished else "-", label=run["label"])
        else:
            ax.plot([], [], color=colour, label=run["label"])
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("train loss (thin) and validation loss (markers)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_quality_vs_memory(runs, out):
    fig, ax = plt.subplots(figsize=(7, 5))
    for run in runs:
        marker = "x" if run["status"] != "complete" else "o"
        ax.scatter([run["kv_bytes"]], [run["final_val_ppl"]], marker=marker)
        ax.annotate(run["label"], (run["kv_bytes"], run["final_val_ppl"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    # Tick exactly the measured cache sizes, in plain bytes, and leave room for labels.
    sizes = sorted({run["kv_bytes"] for run in runs})
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{s:g}" for s in sizes])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.margins(x=0.2, y=0.1)
    ax.set_xlabel("KV-cache bytes per token (all layers; /model kv_bytes_per_token)")
    ax.set_ylabel("final validation perplexity")
    ax.set_title("quality vs KV-cache memory")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root = argv[1]
    if not os.path.isdir(root):
        print(f"plot.py: {root} is not a directory", file=sys.stderr)
        return 2
    paths = find_runs(root)
    if not paths:
        print(f"plot.py: no run.h5 found under {root}", file=sys.stderr)
        return 2
    runs = []
    for path in paths:
        try:
            run = read_run(path, root)
        except (OSError, KeyError) as e:
            print(f"plot.py: warning: skipping unreadable {path}: {e}", file=sys.stderr)
            continue
        if run["status"] != "complete":
            print(f"plot.py: warning: {path} has status '{run['status']}', plotted as unfinished",
                  file=sys.stderr)
        runs.append(run)
    if not runs:
        print(f"plot.py: no readable run.h5 under {root}", file=sys.stderr)
        return 2

    written = []
    out = os.path.join(root, "loss.png")
    plot_loss(runs, out)
    written.append(out)
    measured = [r for r in runs if r["kv_bytes"] is not None and r["final_val_ppl"] is not None]
    if len(measured) > 1:
        out = os.path.join(root, "quality_vs_memory.png")
        plot_quality_vs_memory(measured, out)
        written.append(out)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
