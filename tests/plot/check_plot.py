#!/usr/bin/env python3
"""Checks what scripts/plot.py draws, not only that it writes files.

Usage: check_plot.py PATH/TO/plot.py RUNS_DIR

RUNS_DIR holds the three fixture runs of test_results_plot_fixture.cpp (mha-s0
and mqa-s0 complete, gqa-s0 running; one seed each). From them
sweep_fixture.py derives, in RUNS_DIR-derived/, a sweep with several seeds per
configuration, a dominated configuration and /eval/context rows (sweep/), the
same runs without sweep.yaml (multirun/), a single run (single/), synthetic
recall runs (recall/) and a directory without runs (empty/).

plot.py's main runs on each with its figures kept open, and what it drew is
compared with the run files read here with h5py, the configurations being the
ones the fixture built (for RUNS_DIR: one per attention variant):
  quality_vs_memory  one marker per configuration with a complete run at
      (kv_bytes_per_token, mean final_val_ppl over its complete runs), or the
      mean final val_accuracy for recall runs (on a panel of its own); error
      bars of exactly mean +- sample std where n >= 2 and none where n = 1; the
      Pareto frontier through the non-dominated means (none for one point);
      log x; the experiment in the title;
  loss  per configuration the mean train loss over its complete runs (all of
      them when none is complete) on the union of their steps, the min-max
      band where n >= 2, the mean validation loss with min-max error bars, a
      dotted line for each unfinished run beside complete ones, a legend entry
      per configuration;
  ppl_vs_context  one line per position encoding and scaling (per attention
      variant too when several have rows): the mean over runs of each run's
      newest row per context length, and the min-max band.
Each PNG must decode to the figure's size in pixels (figure inches x plot.DPI)
and not be blank; each SVG must parse as SVG; plot.py must print the paths it
wrote. On the empty directory plot.py must exit 2 with a message.
Exits non-zero with a message on the first mismatch.
"""

import contextlib
import importlib.util
import io
import os
import sys
import xml.etree.ElementTree as ET

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_fixture  # noqa: E402

SCALING = {0: "none", 1: "linear", 2: "ntk", 3: "yarn"}  # docs/evaluation.md
STEMS = ("quality_vs_memory", "loss", "ppl_vs_context")

where = ""  # the scenario being checked, for messages


def fail(message):
    print(f"check_plot.py: {where}: {message}", file=sys.stderr)
    sys.exit(1)


def load_plot_module(path):
    spec = importlib.util.spec_from_file_location("attnlab_plot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_str(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def close(a, b, rtol=1e-9):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=rtol, atol=0)))


# ---------------------------------------------------------------- the run files, read here

def read_run(run_dir):
    with h5py.File(os.path.join(run_dir, "run.h5"), "r") as f:
        def column(name):
            return f[name][...].astype(float) if name in f else None
        accuracy = column("eval/val_accuracy")
        summary = f["summary"].attrs if "summary" in f else {}
        run = {
            "dir": run_dir,
            "name": os.path.basename(run_dir),
            "status": as_str(f.attrs["status"]),
            "attention": as_str(f["model"].attrs["attention"]),
            "position": as_str(f["model"].attrs["position"]),
            "kv": float(f["model"].attrs["kv_bytes_per_token"]),
            "ppl": float(summary["final_val_ppl"]) if "final_val_ppl" in summary else None,
            "accuracy": float(accuracy[-1]) if accuracy is not None else None,
            "train": (column("train/step"), column("train/loss")),
            "eval": (column("eval/step"), column("eval/val_loss")),
            "context": [],
        }
        if "eval/context" in f:
            g = f["eval/context"]
            for c, p, k, fac in zip(g["context"][...], g["ppl"][...], g["scaling_kind"][...],
                                    g["scaling_factor"][...]):
                run["context"].append((float(c), float(p), int(k), float(fac)))
    return run


def expected_configs(configs):
    """The fixture's configurations with the values plot.py must draw for them."""
    out = []
    for c in configs:
        runs = [read_run(d) for d in c["runs"]]
        done = [r for r in runs if r["status"] == "complete"]
        used = done or runs
        metric = "accuracy" if any(r["accuracy"] is not None for r in done) else "ppl"
        values = [r[metric] for r in done if r[metric] is not None]
        out.append({
            "attention": c["attention"], "kv": runs[0]["kv"], "runs": runs, "used": used,
            "extra": [r for r in runs if r not in used], "metric": metric, "n": len(values),
            "mean": float(np.mean(values)) if values else None,
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        })
    return out


def on_union(runs, which):
    """Mean, min and max over runs of (step, value) series, on the union of their steps."""
    steps = np.unique(np.concatenate([r[which][0] for r in runs]))
    table = np.full((len(runs), len(steps)), np.nan)
    for i, r in enumerate(runs):
        for s, v in zip(*r[which]):
            table[i, np.searchsorted(steps, s)] = v
    return steps, table.mean(axis=0), table.min(axis=0), table.max(axis=0)


def frontier(points, higher_is_better):
    keep = []
    for i, (x, y) in enumerate(points):
        beaten = any(x2 <= x and (y2 >= y if higher_is_better else y2 <= y) and (x2, y2) != (x, y)
                     for j, (x2, y2) in enumerate(points) if j != i)
        if not beaten:
            keep.append((x, y))
    return sorted(keep)


# ---------------------------------------------------------------- what was drawn

def gid_lines(ax, prefix):
    return {ln.get_gid()[len(prefix):]: ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith(prefix)}


def gid_collections(ax, prefix):
    return {c.get_gid()[len(prefix):]: c for c in ax.collections if (c.get_gid() or "").startswith(prefix)}


def segments(collection):
    """An error-bar LineCollection as sorted (x, low, high)."""
    out = []
    for seg in collection.get_segments():
        seg = np.asarray(seg, dtype=float)
        out.append((seg[0, 0], min(seg[:, 1]), max(seg[:, 1])))
    return sorted(out)


def band_matches(collection, xs, lo, hi):
    """A fill_between band spans [lo, hi] at every x."""
    vertices = np.concatenate([np.asarray(p.vertices, dtype=float) for p in collection.get_paths()])
    for x, low, high in zip(xs, lo, hi):
        at = vertices[np.isclose(vertices[:, 0], x, rtol=1e-12, atol=0), 1]
        if len(at) == 0 or not close(at.min(), low) or not close(at.max(), high):
            return False
    return True


def exactly(ax, gid):
    """{"": artist} for each line or collection whose gid is `gid` (several: a list under "")."""
    found = [a for a in list(ax.get_lines()) + list(ax.collections) if a.get_gid() == gid]
    return {"": found[0]} if len(found) == 1 else {str(i): a for i, a in enumerate(found)}


def legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def check_quality(fig, configs, experiment):
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if experiment not in title:
        fail(f"quality plot: title {title!r} does not name the experiment {experiment!r}")
    measured = [c for c in configs if c["n"] > 0]
    panels = {}
    for ax in fig.axes:
        label = ax.get_ylabel()
        metric = "accuracy" if "accuracy" in label else "ppl" if "perplexity" in label else None
        if metric is None or metric in panels:
            fail(f"quality plot: unexpected panel with y label {label!r}")
        panels[metric] = ax
    if sorted(panels) != sorted({c["metric"] for c in measured}):
        fail(f"quality plot: panels {sorted(panels)}, expected {sorted({c['metric'] for c in measured})}")
    for metric, ax in panels.items():
        mine = [c for c in measured if c["metric"] == metric]
        if ax.get_xscale() != "log":
            fail(f"quality plot ({metric}): x axis is not logarithmic")
        # One marker line per attention variant, its points at the configurations' means.
        drawn = gid_lines(ax, "points:")
        variants = sorted({c["attention"] for c in mine})
        if sorted(drawn) != variants:
            fail(f"quality plot ({metric}): marker series {sorted(drawn)}, expected one per variant {variants}")
        for attention, line in drawn.items():
            got = sorted(zip(np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)))
            want = sorted((c["kv"], c["mean"]) for c in mine if c["attention"] == attention)
            if len(got) != len(want) or not all(close(g, w) for g, w in zip(got, want)):
                fail(f"quality plot ({metric}): {attention} points {got}, expected (kv bytes, mean) {want}")
        if len({ln.get_marker() for ln in drawn.values()}) != len(drawn) or \
                len({matplotlib.colors.to_hex(ln.get_color()) for ln in drawn.values()}) != len(drawn):
            fail(f"quality plot ({metric}): variants do not each have their own marker and colour")
        # Error bars: exactly mean +- sample std over seeds where n >= 2, none where n = 1.
        bars = gid_collections(ax, "errorbars:")
        got = sorted(s for c in bars.values() for s in segments(c))
        want = sorted((c["kv"], c["mean"] - c["std"], c["mean"] + c["std"]) for c in mine if c["std"] is not None)
        if len(got) != len(want) or not all(close(g, w) for g, w in zip(got, want)):
            fail(f"quality plot ({metric}): error bars (x, low, high) {got}, expected mean +- std {want}")
        # The Pareto frontier through the non-dominated means.
        front = frontier([(c["kv"], c["mean"]) for c in mine], metric == "accuracy")
        lines = exactly(ax, "frontier")
        if len(mine) < 2:
            if lines:
                fail(f"quality plot ({metric}): a frontier drawn through a single point")
        else:
            if len(lines) != 1:
                fail(f"quality plot ({metric}): {len(lines)} frontier lines, expected 1")
            line = lines[""]
            got = list(zip(np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)))
            if len(got) != len(front) or not all(close(g, w) for g, w in zip(got, front)):
                fail(f"quality plot ({metric}): frontier {got}, expected {front}")
            if line.get_drawstyle() != "steps-post":
                fail(f"quality plot ({metric}): frontier drawn as {line.get_drawstyle()}, expected a staircase")
        texts = legend_texts(ax)
        for v in variants + (["Pareto frontier"] if len(mine) > 1 else []):
            if v not in texts:
                fail(f"quality plot ({metric}): legend {texts} lacks {v!r}")
    return {m: frontier([(c["kv"], c["mean"]) for c in measured if c["metric"] == m], m == "accuracy")
            for m in panels}


def check_loss(fig, configs):
    ax = fig.axes[0]
    trains = gid_lines(ax, "train:")
    if len(trains) != len(configs):
        fail(f"loss plot: {len(trains)} train-loss lines, expected one per configuration ({len(configs)})")
    for c in configs:
        steps, mean, lo, hi = on_union(c["used"], "train")
        match = [k for k, ln in trains.items() if close(ln.get_xdata(), steps) and close(ln.get_ydata(), mean)]
        if len(match) != 1:
            fail(f"loss plot: {len(match)} lines equal the mean train loss of {c['attention']} "
                 f"({', '.join(r['name'] for r in c['used'])}), expected 1")
        key = match[0]
        band = exactly(ax, f"band:{key}")
        if len(c["used"]) > 1 and (len(band) != 1 or not band_matches(band[""], steps, lo, hi)):
            fail(f"loss plot: {key}: no band spanning the min-max train loss over its seeds")
        if len(c["used"]) == 1 and band:
            fail(f"loss plot: {key}: a band around a single run")
        steps, mean, lo, hi = on_union(c["used"], "eval")
        val = exactly(ax, f"val:{key}")
        if len(val) != 1 or not (close(val[""].get_xdata(), steps) and close(val[""].get_ydata(), mean)):
            fail(f"loss plot: {key}: validation markers are not the mean eval/val_loss on eval/step")
        bars = exactly(ax, f"valbars:{key}")
        if len(c["used"]) > 1:
            want = sorted(zip(steps, lo, hi))
            if len(bars) != 1 or not close(segments(bars[""]), want):
                fail(f"loss plot: {key}: validation error bars are not the min-max over seeds")
        elif bars:
            fail(f"loss plot: {key}: error bars on a single run's validation loss")
        for r in c["extra"]:
            extra = exactly(ax, f"extra:{r['name']}")
            if len(extra) != 1 or not (close(extra[""].get_xdata(), r["train"][0])
                                       and close(extra[""].get_ydata(), r["train"][1])):
                fail(f"loss plot: the unfinished {r['name']} is not drawn on its own")
            if extra[""].get_linestyle() != ":":
                fail(f"loss plot: the unfinished {r['name']} is not dotted")
    texts = legend_texts(ax)
    if len(texts) != len(configs):
        fail(f"loss plot: legend {texts}, expected one entry per configuration")
    for c in configs:
        if not any(t.startswith(c["attention"]) for t in texts):
            fail(f"loss plot: no legend entry for {c['attention']} in {texts}")
        if all(r["status"] != "complete" for r in c["runs"]):
            status = c["runs"][0]["status"]
            if not any(t.startswith(c["attention"]) and status in t for t in texts):
                fail(f"loss plot: the legend does not mark {c['attention']} as {status}: {texts}")


def expected_context(configs):
    """{(attention or None, position, scaling, factor): (contexts, mean, min, max, n)}."""
    runs = [r for c in configs for r in c["runs"] if r["context"]]
    split = len({r["attention"] for r in runs}) > 1
    per_line = {}
    for r in runs:
        newest = {}
        for context, ppl, kind, factor in r["context"]:
            line = (r["attention"] if split else None, r["position"], kind, factor if kind else None)
            newest[(line, context)] = ppl
        for (line, context), ppl in newest.items():
            per_line.setdefault(line, {}).setdefault(r["dir"], {})[context] = ppl
    out = {}
    for line, by_run in per_line.items():
        contexts = sorted({c for v in by_run.values() for c in v})
        table = np.array([[v.get(c, np.nan) for c in contexts] for v in by_run.values()])
        out[line] = (contexts, np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0),
                     len(by_run))
    return out


def check_context(fig, configs):
    ax = fig.axes[0]
    want = expected_context(configs)
    drawn = gid_lines(ax, "context:")
    if len(drawn) != len(want):
        fail(f"context plot: lines {sorted(drawn)}, expected {len(want)}")
    for (attention, position, kind, factor), (contexts, mean, lo, hi, n) in want.items():
        match = [k for k, ln in drawn.items() if close(ln.get_xdata(), contexts) and close(ln.get_ydata(), mean)]
        if len(match) != 1:
            fail(f"context plot: no line is the mean ppl of {attention or ''} {position} "
                 f"{SCALING[kind]} over contexts {contexts}")
        name = match[0]
        words = [position] + ([attention] if attention else []) + \
                ([SCALING[kind], f"{factor:g}"] if kind else [])
        if not all(w in name for w in words) or (not kind and " + " in name):
            fail(f"context plot: line {name!r} should name {words}")
        band = exactly(ax, f"contextband:{name}")
        if n > 1 and (len(band) != 1 or not band_matches(band[""], contexts, lo, hi)):
            fail(f"context plot: {name}: no min-max band over its {n} runs")
        if n == 1 and band:
            fail(f"context plot: {name}: a band around a single run")
    if ax.get_xscale() != "log":
        fail("context plot: x axis is not logarithmic")


def check_png(path, fig, dpi):
    if not os.path.isfile(path):
        fail(f"{path} was not written")
    image = matplotlib.image.imread(path)
    width, height = fig.get_size_inches()
    if image.ndim != 3 or image.shape[:2] != (round(height * dpi), round(width * dpi)):
        fail(f"{path}: {image.shape} pixels, expected {round(height * dpi)}x{round(width * dpi)} "
             f"({width}x{height} inches at {dpi} dpi)")
    rgb = image[..., :3].reshape(-1, 3)
    background = np.median(rgb, axis=0)
    drawn = np.mean(np.any(np.abs(rgb - background) > 0.1, axis=1))
    colours = len(np.unique((rgb * 255).round().astype(np.uint8), axis=0))
    if drawn < 0.01 or colours < 8:
        fail(f"{path}: looks blank ({drawn:.4f} of pixels drawn, {colours} colours)")


def check_svg(path):
    if not os.path.isfile(path):
        fail(f"{path} was not written")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        fail(f"{path}: not XML ({e})")
    if not root.tag.endswith("svg") or sum(1 for e in root.iter() if e.tag.endswith("path")) < 20:
        fail(f"{path}: not an SVG drawing")


# ---------------------------------------------------------------- running plot.py

class Recorder:
    """plot.py with its figures kept open for inspection."""

    def __init__(self, plot):
        self.plot, self.figures = plot, []
        subplots, self.close = plt.subplots, plt.close

        def recording_subplots(*args, **kwargs):
            fig, ax = subplots(*args, **kwargs)
            self.figures.append(fig)
            return fig, ax

        plot.plt.subplots = recording_subplots
        plot.plt.close = lambda *args, **kwargs: None

    def run(self, directory):
        for stem in STEMS:
            for ext in ("png", "svg"):
                path = os.path.join(directory, f"{stem}.{ext}")
                if os.path.exists(path):
                    os.remove(path)
        for fig in self.figures:
            self.close(fig)
        self.figures = []
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = self.plot.main(["plot.py", directory])
        return rc, out.getvalue().split(), err.getvalue(), {f.get_label(): f for f in self.figures}


def check_directory(recorder, directory, configs, experiment, frontier_size=None):
    global where
    where = directory
    rc, printed, err, figures = recorder.run(directory)
    if rc != 0:
        fail(f"plot.py returned {rc}: {err.strip()}")
    configs = expected_configs(configs)
    stems = (["quality_vs_memory"] if any(c["n"] for c in configs) else []) + ["loss"] + \
        (["ppl_vs_context"] if any(r["context"] for c in configs for r in c["runs"]) else [])
    if sorted(figures) != sorted(stems):
        fail(f"plot.py drew {sorted(figures)}, expected {sorted(stems)}")
    wanted = [os.path.join(directory, f"{s}.{e}") for s in stems for e in ("png", "svg")]
    if sorted(printed) != sorted(wanted):
        fail(f"plot.py printed {printed}, expected the paths it wrote {wanted}")
    fronts = {}
    if "quality_vs_memory" in figures:
        fronts = check_quality(figures["quality_vs_memory"], configs, experiment)
        if frontier_size is not None and [len(f) for f in fronts.values()] != [frontier_size]:
            fail(f"fixture: the frontier {fronts} should have {frontier_size} points")
    check_loss(figures["loss"], configs)
    if "ppl_vs_context" in figures:
        check_context(figures["ppl_vs_context"], configs)
    for stem in stems:
        check_png(os.path.join(directory, f"{stem}.png"), figures[stem], recorder.plot.DPI)
        check_svg(os.path.join(directory, f"{stem}.svg"))
    return configs, fronts


def fixture_configs(root):
    """RUNS_DIR's runs, a configuration per (attention, kv bytes, position): they carry no config."""
    groups = {}
    for name in sorted(os.listdir(root)):
        run_dir = os.path.join(root, name)
        if os.path.isfile(os.path.join(run_dir, "run.h5")):
            r = read_run(run_dir)
            groups.setdefault((r["attention"], r["kv"], r["position"]), []).append(run_dir)
    if sum(len(v) for v in groups.values()) < 3:
        fail(f"expected the three fixture runs under {root}, found {sum(len(v) for v in groups.values())}")
    return [{"name": k[0], "attention": k[0], "runs": v} for k, v in groups.items()]


def main(argv):
    global where
    if len(argv) != 3:
        print("usage: check_plot.py PATH/TO/plot.py RUNS_DIR", file=sys.stderr)
        return 1
    plot_path, root = argv[1], os.path.normpath(argv[2])
    where = root
    recorder = Recorder(load_plot_module(plot_path))

    # The C++ writer's runs: one seed each, one of them unfinished.
    check_directory(recorder, root, fixture_configs(root), os.path.basename(root), frontier_size=2)

    derived = root + "-derived"
    made = sweep_fixture.build(root, derived)
    # Seeds: error bars; gqa is worse than mqa on both axes, so off the frontier.
    sweep, _ = check_directory(recorder, os.path.join(derived, "sweep"), made["sweep"],
                                    sweep_fixture.EXPERIMENT, frontier_size=3)
    if any(c["n"] < 2 for c in sweep if c["attention"] != "mla") or not any(c["extra"] for c in sweep):
        fail("fixture: the sweep should have several seeds per configuration and an unfinished run")
    # Without sweep.yaml the runs group by their config_yaml: the same configurations.
    check_directory(recorder, os.path.join(derived, "multirun"), made["multirun"], sweep_fixture.EXPERIMENT,
                    frontier_size=3)
    check_directory(recorder, os.path.join(derived, "single"), made["single"], sweep_fixture.EXPERIMENT)
    check_directory(recorder, os.path.join(derived, "recall"), made["recall"], "plotrecall", frontier_size=2)

    where = os.path.join(derived, "empty")
    rc, printed, err, figures = recorder.run(where)
    if rc != 2 or "no run.h5" not in err or printed or figures:
        fail(f"plot.py on a directory without runs: exit {rc}, printed {printed}, stderr {err!r}; "
             f"expected exit 2 and a message")

    print(f"check_plot.py: fixture runs, a sweep (and as a multirun), a single run and recall runs: "
          f"every figure matches its run files; derived directories in {derived}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
