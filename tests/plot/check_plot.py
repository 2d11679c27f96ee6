#!/usr/bin/env python3
"""Checks what scripts/plot.py draws, not only that it writes files.

Usage: check_plot.py PATH/TO/plot.py RUNS_DIR

Runs plot.py's main on RUNS_DIR (the fixture runs of test_results_plot_fixture.cpp)
with figures kept open, then compares the drawn data with the run files read
here with h5py: each run's train and validation loss lines and its legend label
in loss.png; one point per finished run at (kv_bytes_per_token, final_val_ppl)
with its label in quality_vs_memory.png. Both PNGs must decode to images of the
figure's shape that are not blank. Exits non-zero with a message on any mismatch.
"""

import importlib.util
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def fail(message):
    print(f"check_plot.py: {message}", file=sys.stderr)
    sys.exit(1)


def load_plot_module(path):
    spec = importlib.util.spec_from_file_location("attnlab_plot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_str(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def expected_runs(root):
    """Every run.h5 directly under root's subdirectories, read independently of plot.py."""
    runs = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "run.h5")
        if not os.path.isfile(path):
            continue
        with h5py.File(path, "r") as f:
            status = as_str(f.attrs["status"])
            label = f"{name} ({as_str(f['model'].attrs['attention'])})"
            if status != "complete":
                label += f" [{status}]"
            runs.append({
                "label": label,
                "kv_bytes": float(f["model"].attrs["kv_bytes_per_token"]),
                "final_val_ppl": float(f["summary"].attrs["final_val_ppl"])
                if "summary" in f and "final_val_ppl" in f["summary"].attrs else None,
                "train": (f["train/step"][...].astype(float), f["train/loss"][...].astype(float)),
                "eval": (f["eval/step"][...].astype(float), f["eval/val_loss"][...].astype(float)),
            })
    if len(runs) < 3:
        fail(f"expected the three fixture runs under {root}, found {len(runs)}")
    return runs


def same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0)


def check_loss(ax, runs):
    lines = ax.get_lines()
    for run in runs:
        train = [ln for ln in lines if same(ln.get_xdata(), run["train"][0]) and same(ln.get_ydata(), run["train"][1])]
        if not train:
            fail(f"loss plot: no train-loss line equal to {run['label']}'s train/step, train/loss")
        val = [ln for ln in lines if ln.get_label() == run["label"]]
        if len(val) != 1:
            fail(f"loss plot: {len(val)} lines labelled {run['label']!r}, expected 1")
        if not (same(val[0].get_xdata(), run["eval"][0]) and same(val[0].get_ydata(), run["eval"][1])):
            fail(f"loss plot: the {run['label']!r} line is not eval/step, eval/val_loss")
    legend = sorted(t.get_text() for t in ax.get_legend().get_texts())
    if legend != sorted(r["label"] for r in runs):
        fail(f"loss plot: legend {legend}, expected {sorted(r['label'] for r in runs)}")


def check_quality(ax, runs):
    finished = [r for r in runs if r["final_val_ppl"] is not None]
    if len(finished) < 2:
        fail("fixture: fewer than two runs with final_val_ppl")
    points = sorted(tuple(p) for c in ax.collections for p in np.asarray(c.get_offsets(), dtype=float))
    wanted = sorted((r["kv_bytes"], r["final_val_ppl"]) for r in finished)
    if len(points) != len(wanted) or not all(same(p, w) for p, w in zip(points, wanted)):
        fail(f"quality plot: points {points}, expected (kv_bytes_per_token, final_val_ppl) {wanted}")
    labels = {t.get_text(): tuple(float(v) for v in t.xy) for t in ax.texts}
    for r in finished:
        if r["label"] not in labels or not same(labels[r["label"]], (r["kv_bytes"], r["final_val_ppl"])):
            fail(f"quality plot: label {r['label']!r} not at its point; labels {labels}")
    if len(labels) != len(finished):
        fail(f"quality plot: labels {sorted(labels)}, expected only the finished runs")
    if ax.get_xscale() != "log":
        fail("quality plot: x axis is not logarithmic")


def check_png(path, fig):
    if not os.path.isfile(path):
        fail(f"{path} was not written")
    image = matplotlib.image.imread(path)
    # savefig picks its own dpi: the image must have the figure's aspect ratio.
    width, height = fig.get_size_inches()
    if image.ndim != 3 or min(image.shape[:2]) < 100 or abs(image.shape[1] / image.shape[0] - width / height) > 0.01:
        fail(f"{path}: {image.shape} pixels, expected a {width}x{height} inch figure")
    rgb = image[..., :3].reshape(-1, 3)
    background = np.median(rgb, axis=0)
    drawn = np.mean(np.any(np.abs(rgb - background) > 0.1, axis=1))
    colours = len(np.unique((rgb * 255).round().astype(np.uint8), axis=0))
    if drawn < 0.01 or colours < 8:
        fail(f"{path}: looks blank ({drawn:.4f} of pixels drawn, {colours} colours)")


def main(argv):
    if len(argv) != 3:
        fail("usage: check_plot.py PATH/TO/plot.py RUNS_DIR")
    plot_path, root = argv[1], argv[2]
    runs = expected_runs(root)
    outputs = [os.path.join(root, "loss.png"), os.path.join(root, "quality_vs_memory.png")]
    for path in outputs:
        if os.path.exists(path):
            os.remove(path)

    plot = load_plot_module(plot_path)
    figures = []
    subplots = plt.subplots

    def recording_subplots(*args, **kwargs):
        fig, ax = subplots(*args, **kwargs)
        figures.append((fig, ax))
        return fig, ax

    plot.plt.subplots = recording_subplots
    plot.plt.close = lambda *args, **kwargs: None  # keep the figures to inspect them
    if plot.main(["plot.py", root]) != 0:
        fail("plot.py returned non-zero")
    if len(figures) != 2:
        fail(f"plot.py drew {len(figures)} figures, expected loss and quality_vs_memory")
    (loss_fig, loss_ax), (quality_fig, quality_ax) = figures
    check_loss(loss_ax, runs)
    check_quality(quality_ax, runs)
    check_png(outputs[0], loss_fig)
    check_png(outputs[1], quality_fig)
    print(f"check_plot.py: {len(runs)} runs, both figures match their run files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
