#!/usr/bin/env python3
"""Plots attnlab run files: quality against KV-cache memory, loss curves, and
perplexity against context length, with the spread over seeds.

Usage: plot.py RUN_OR_SWEEP_DIR

Finds every run.h5 under the directory (the directory itself may hold one: a
single run works) and writes into that directory, each as .png and .svg:
  quality_vs_memory  quality of each configuration against its KV-cache bytes
                     per token over all layers (log x): final validation
                     perplexity, or for synthetic recall runs (their /eval has
                     val_accuracy) the final recall accuracy; mean over the
                     configuration's complete runs with error bars of +- the
                     sample standard deviation over seeds (n >= 2), one colour
                     and marker per attention variant, and the Pareto frontier
                     (fewer bytes and lower perplexity / higher accuracy are
                     better). Text and synthetic runs get a panel each.
  loss               per configuration, the mean train loss over its seeds
                     against step with a min-max band, and the mean validation
                     loss as markers with min-max error bars.
  ppl_vs_context     when a run has /eval/context rows: perplexity against
                     evaluated context length, one line per position encoding
                     (and position scaling with its factor, when a row has
                     one; and per attention variant when runs of several
                     variants have rows), the mean over those runs of each
                     run's newest row per length, with a min-max band.

A configuration is the runs that differ only in their seed. Runs listed in a
sweep.yaml beside them are grouped as `attnlab collect` groups them (their
overrides without seed, so the points are summary_configs.csv's rows); other
runs by their resolved config (root attribute config_yaml) without seed,
data_seed, run.*, data.dir and train.threads; always also by the attention
variant, KV bytes per token and position encoding of /model. Means and bands
use a configuration's complete runs (all of its runs, drawn dotted, when none
is complete).

Prints the paths it wrote. Exit code 2 when no run file is found.
Run-file layout: docs/run-file.md; /eval/context: docs/evaluation.md.
"""

import csv
import math
import os
import re
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 120  # the PNGs are figure size x DPI pixels
QUALITY_SIZE = (8.5, 5.5)  # inches for one panel; two panels double the width
LOSS_SIZE = (9.0, 5.5)
CONTEXT_SIZE = (8.5, 5.5)

# Config keys that do not make two runs different configurations.
IGNORED_CONFIG_KEYS = {"seed", "data_seed", "data.dir", "train.threads"}
IGNORED_CONFIG_PREFIXES = ("run.",)

# One colour and marker per attention variant, the same in every plot.
ATTENTION_STYLE = {
    "mha": ("tab:blue", "o"),
    "mqa": ("tab:orange", "s"),
    "gqa": ("tab:green", "^"),
    "mla": ("tab:red", "D"),
}
ATTENTION_ORDER = ["mha", "gqa", "mqa", "mla"]  # legends: most cache first
SPARE_STYLES = [("tab:purple", "v"), ("tab:brown", "P"), ("tab:pink", "X"), ("tab:olive", "*"),
                ("tab:cyan", "h"), ("tab:gray", "<")]

# ppl_vs_context: when runs of several attention variants have context rows, a
# line per (variant, position encoding) instead of averaging the variants.
CONTEXT_SPLIT_BY_ATTENTION = True

SCALING_NAMES = {0: "none", 1: "linear", 2: "ntk", 3: "yarn"}  # docs/evaluation.md; the file's codes win


# ---------------------------------------------------------------- reading

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


def number(attrs, name):
    if name not in attrs:
        return None
    try:
        value = float(attrs[name])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_codes(value, defaults):
    """'0=none, 1=linear, 2=ntk, 3=yarn' -> {0: 'none', ...}."""
    codes = dict(defaults)
    for part in text(value).split(","):
        code, _, name = part.strip().partition("=")
        if name and code.strip().lstrip("-").isdigit():
            codes[int(code)] = name.strip()
    return codes


def read_context(f):
    """/eval/context rows as [(line key, context, ppl, rope_theta)], file order (newer rows last)."""
    if "eval/context" not in f or not isinstance(f["eval/context"], h5py.Group):
        return []
    g = f["eval/context"]
    context, ppl = series(f, "eval/context", "context"), series(f, "eval/context", "ppl")
    if context is None or ppl is None:
        return []
    n = min(len(context), len(ppl))
    kind = series(f, "eval/context", "scaling_kind")
    factor = series(f, "eval/context", "scaling_factor")
    position_kind = series(f, "eval/context", "position_kind")
    theta = series(f, "eval/context", "rope_theta")
    scaling_codes = parse_codes(g.attrs.get("scaling_kind_codes", ""), SCALING_NAMES)
    position_codes = parse_codes(g.attrs.get("position_kind_codes", ""), {})
    model_position = text(f["model"].attrs["position"]) if "model" in f and "position" in f["model"].attrs else None
    rows = []
    for i in range(n):
        if not (np.isfinite(context[i]) and np.isfinite(ppl[i])):
            continue
        position = model_position
        if position is None and position_kind is not None and np.isfinite(position_kind[i]):
            position = position_codes.get(int(position_kind[i]), f"position {int(position_kind[i])}")
        key = position or "?"
        if kind is not None and np.isfinite(kind[i]) and int(kind[i]) != 0:
            key += f" + {scaling_codes.get(int(kind[i]), f'scaling {int(kind[i])}')}"
            if factor is not None and np.isfinite(factor[i]):
                key += f" \u00d7{factor[i]:g}"
        rows.append((key, float(context[i]), float(ppl[i]),
                     float(theta[i]) if theta is not None and i < len(theta) and np.isfinite(theta[i]) else None))
    return rows


def read_config(f, path):
    """The resolved config (root attribute config_yaml) as {'a.b': 'text'}; None without one."""
    if "config_yaml" not in f.attrs:
        return None
    try:
        return flatten(parse_yaml(text(f.attrs["config_yaml"])))
    except Exception as e:  # noqa: BLE001 - a config we cannot read only costs the grouping
        print(f"plot.py: warning: {path}: unreadable config_yaml ({e}); grouped by its model only", file=sys.stderr)
        return None


def read_run(path, root):
    run_dir = os.path.dirname(os.path.abspath(path))
    name = os.path.relpath(run_dir, os.path.abspath(root))
    if name == ".":
        name = os.path.basename(run_dir)
    with h5py.File(path, "r") as f:
        model = f["model"].attrs if "model" in f else {}
        summary = f["summary"].attrs if "summary" in f else {}
        accuracy = series(f, "eval", "val_accuracy")
        run = {
            "name": name,
            "dir": run_dir,
            "status": text(f.attrs.get("status", "unknown")),
            "seed": int(f.attrs["seed"]) if "seed" in f.attrs else None,
            "attention": text(model.get("attention", "?")),
            "position": text(model.get("position", "?")),
            "kv_bytes": number(model, "kv_bytes_per_token"),
            "final_val_ppl": number(summary, "final_val_ppl"),
            "synthetic": accuracy is not None,
            "final_accuracy": float(accuracy[-1]) if accuracy is not None and len(accuracy)
            and np.isfinite(accuracy[-1]) else None,
            "train_step": series(f, "train", "step"),
            "train_loss": series(f, "train", "loss"),
            "eval_step": series(f, "eval", "step"),
            "val_loss": series(f, "eval", "val_loss"),
            "context": read_context(f),
            "config": read_config(f, path),
        }
    run["complete"] = run["status"] == "complete"
    return run


# A small YAML subset: what yaml-cpp writes for resolved configs and sweep
# manifests (block mappings and sequences, flow sequences, quoted scalars).
# PyYAML is not required.

def _scalar(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return bytes(s[1:-1], "utf-8").decode("unicode_escape")
    if len(s) >= 2 and s[0] == s[-1] == "'":
        return s[1:-1].replace("''", "'")
    return s


def _flow(s):
    """'[a, "b,c", d]' -> ['a', 'b,c', 'd'] (one level; nested brackets stay text)."""
    inner, items, current, quote, depth = s.strip()[1:-1], [], "", None, 0
    for ch in inner:
        if quote:
            current += ch
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch in "[{":
            depth += 1
            current += ch
        elif ch in "]}":
            depth -= 1
            current += ch
        elif ch == "," and depth == 0:
            items.append(_scalar(current))
            current = ""
        else:
            current += ch
    if current.strip():
        items.append(_scalar(current))
    return items


def _value(s):
    s = s.strip()
    return _flow(s) if s.startswith("[") and s.endswith("]") else _scalar(s)


def _split_key(s):
    """'key: value' -> (key, value); None when s is no mapping entry."""
    m = re.match(r"""^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s"'#][^:]*?)\s*:(?:\s+(.*))?$""", s)
    if not m:
        return None
    return _scalar(m.group(1)), (m.group(2) or "")


def parse_yaml(source):
    lines = []
    for raw in source.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        lines.append((len(raw) - len(raw.lstrip(" ")), stripped))
    value, _ = _block(lines, 0, lines[0][0] if lines else 0)
    return value


def _block(lines, i, indent):
    if i >= len(lines):
        return None, i
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        out = []
        while i < len(lines) and lines[i][0] == indent and (lines[i][1].startswith("- ") or lines[i][1] == "-"):
            item = lines[i][1][1:].strip()
            if not item:
                value, i = _block(lines, i + 1, lines[i + 1][0]) if i + 1 < len(lines) and lines[i + 1][0] > indent \
                    else (None, i + 1)
                out.append(value)
            elif _split_key(item) and not item.startswith("["):
                # '- key: value' opens a mapping whose other keys sit under the first one.
                lines[i] = (indent + 2, item)
                value, i = _block(lines, i, indent + 2)
                out.append(value)
            else:
                out.append(_value(item))
                i += 1
        return out, i
    out = {}
    while i < len(lines) and lines[i][0] == indent:
        entry = _split_key(lines[i][1])
        if entry is None:
            i += 1
            continue
        key, rest = entry
        i += 1
        if rest.strip():
            out[key] = _value(rest)
        elif i < len(lines) and (lines[i][0] > indent or (lines[i][0] == indent and lines[i][1].startswith("- "))):
            out[key], i = _block(lines, i, lines[i][0])
        else:
            out[key] = ""
    return out, i


def flatten(tree, prefix=""):
    """Nested mappings -> {'a.b': 'text'}; lists become their flow text."""
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(tree, list):
        out[prefix[:-1]] = "[" + ", ".join(str(v) for v in tree) + "]"
    elif prefix:
        out[prefix[:-1]] = "" if tree is None else str(tree)
    return out


def read_manifest(directory, cache):
    """sweep.yaml in `directory`: (experiment, {run id: {key: value} without seed}) or None."""
    if directory in cache:
        return cache[directory]
    path = os.path.join(directory, "sweep.yaml")
    manifest = None
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                y = parse_yaml(f.read())
            runs = {}
            for r in y.get("runs") or []:
                overrides = r.get("overrides") or []
                runs[str(r["id"])] = split_overrides(overrides if isinstance(overrides, list) else [overrides])
                if r.get("dir"):
                    runs.setdefault(os.path.basename(str(r["dir"]).rstrip("/")), runs[str(r["id"])])
            manifest = (str(y.get("experiment") or os.path.basename(directory)), runs)
        except (OSError, KeyError, TypeError, AttributeError, ValueError) as e:
            print(f"plot.py: warning: ignoring unreadable {path}: {e}", file=sys.stderr)
    cache[directory] = manifest
    return manifest


def split_overrides(overrides):
    """['attention=mha', 'seed=0', '+x=1'] -> {'attention': 'mha', 'x': '1'}: as collect, the last value wins."""
    out = {}
    for o in overrides:
        key, eq, value = str(o).partition("=")
        if not eq:
            continue
        out[key[1:] if key.startswith("+") else key] = value
    out.pop("seed", None)
    return out


# ---------------------------------------------------------------- grouping

def group_runs(runs):
    """Configurations: runs that differ only in their seed; mha, gqa, mqa, mla, then others."""
    manifests = {}
    groups, by_key = [], {}
    for run in runs:
        manifest = read_manifest(os.path.dirname(run["dir"]), manifests)
        base = (run["attention"], run["kv_bytes"], run["position"])
        if manifest is not None and os.path.basename(run["dir"]) in manifest[1]:
            params = dict(manifest[1][os.path.basename(run["dir"])])
            origin = ("sweep", os.path.dirname(run["dir"]))
        elif run["config"] is not None:
            params = {k: v for k, v in run["config"].items()
                      if k not in IGNORED_CONFIG_KEYS and not k.startswith(IGNORED_CONFIG_PREFIXES)}
            origin = ("config",)
        else:
            params = {}
            origin = ("model",)
        key = base + origin + tuple(sorted(params.items()))
        if key not in by_key:
            by_key[key] = {"attention": run["attention"], "position": run["position"], "kv_bytes": run["kv_bytes"],
                           "params": params, "runs": [], "experiment": manifest[0] if origin[0] == "sweep" else None}
            groups.append(by_key[key])
        by_key[key]["runs"].append(run)
    name_configurations(groups)
    for g in groups:
        g["used"] = [r for r in g["runs"] if r["complete"]] or list(g["runs"])
        g["unfinished"] = not any(r["complete"] for r in g["runs"])
    return groups


def short_key(key):
    """attention.n_kv_heads -> n_kv_heads; position.kind -> position."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "kind" and len(parts) > 1 else parts[-1]


def name_configurations(groups):
    """Sorts the configurations (mha, gqa, mqa, mla, others) and labels each: its attention variant
    and the keys whose values differ between configurations of that variant (what follows from
    the variant, such as its n_kv_heads, is left out); prefixed by its sweep's experiment (or
    run.name) when the directory holds several."""
    for g in groups:
        names = {(r["config"] or {}).get("run.name") for r in g["runs"]}
        g["source"] = g["experiment"] or (names.pop() if len(names) == 1 else None)
    several_sources = len({g["source"] for g in groups}) > 1
    differing, position_differs = set(), set()
    for family in {(g["source"] if several_sources else None, g["attention"]) for g in groups}:
        same = [g for g in groups if (g["source"] if several_sources else None, g["attention"]) == family]
        keys = {k for k in set().union(*(g["params"].keys() for g in same))
                if len({g["params"].get(k) for g in same}) > 1}
        differing |= keys
        if len({g["position"] for g in same}) > 1 and not any(k.startswith("position") for k in keys):
            position_differs.add(family)  # runs without a config: say which position encoding
    shorts = [short_key(k) for k in differing]

    def shown(g):
        return tuple((k, g["params"][k]) for k in sorted(differing)
                     if k in g["params"] and k not in ("attention", "attention.kind"))

    groups.sort(key=lambda g: (ATTENTION_ORDER.index(g["attention"]) if g["attention"] in ATTENTION_ORDER
                               else len(ATTENTION_ORDER), g["attention"], str(g["source"]), shown(g)))
    for g in groups:
        words = [f"{short_key(k) if shorts.count(short_key(k)) == 1 else k}={v}" for k, v in shown(g)]
        if len(words) > 3:
            words = words[:3] + ["\u2026"]
        if (g["source"] if several_sources else None, g["attention"]) in position_differs:
            words.append(g["position"])
        g["label"] = " ".join([g["attention"]] + words)
        if several_sources and g["source"]:
            g["label"] = f"{g['source']}: {g['label']}"
    # Distinct labels even when nothing recorded tells two configurations apart.
    seen = {}
    for g in groups:
        seen.setdefault(g["label"], []).append(g)
    for same in seen.values():
        if len(same) > 1:
            for g in same:
                g["label"] += f" {g['kv_bytes']:g}B" if g["kv_bytes"] is not None else f" {g['runs'][0]['name']}"


def mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return mean, std


def pareto(points, higher_is_better):
    """Indices of the points no other point beats on both axes (x lower is better), by x."""
    keep = []
    for i, (x, y) in enumerate(points):
        dominated = False
        for j, (x2, y2) in enumerate(points):
            if j == i:
                continue
            better_y = y2 >= y if higher_is_better else y2 <= y
            if x2 <= x and better_y and (x2 < x or y2 != y):
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return sorted(keep, key=lambda i: (points[i][0], -points[i][1] if higher_is_better else points[i][1]))


def style(attention, assigned):
    if attention in ATTENTION_STYLE:
        return ATTENTION_STYLE[attention]
    if attention not in assigned:
        assigned[attention] = SPARE_STYLES[len(assigned) % len(SPARE_STYLES)]
    return assigned[attention]


def experiment_name(root, groups):
    names = {g["experiment"] for g in groups}
    if len(names) == 1 and None not in names:
        return names.pop()
    run_names = {(r["config"] or {}).get("run.name") for g in groups for r in g["runs"]}
    if len(run_names) == 1 and None not in run_names:
        return run_names.pop()
    return os.path.basename(os.path.abspath(root).rstrip(os.sep)) or root


def seeds_text(counts):
    counts = sorted(counts)
    if not counts:
        return "no complete runs"
    if len(counts) == 1 and counts[0] == 1:
        return "1 run"
    n = f"{counts[0]}" if counts[0] == counts[-1] else f"{counts[0]}\u2013{counts[-1]}"
    return f"n = {n} seed{'s' if counts[-1] > 1 else ''} per configuration"


def byte_label(b):
    if b >= 1024 * 1024:
        return f"{b / 1024 / 1024:.3g} MiB"
    if b >= 1024:
        return f"{b / 1024:.3g} KiB"
    return f"{b:g} B"


def save(fig, root, stem):
    fig.set_label(stem)
    paths = []
    for ext in ("png", "svg"):
        path = os.path.join(root, f"{stem}.{ext}")
        fig.savefig(path, dpi=DPI)
        paths.append(path)
    plt.close(fig)
    return paths


# ---------------------------------------------------------------- quality vs memory

def quality_points(groups):
    """Per panel ('ppl' or 'accuracy'): one entry per configuration with a complete, measured run."""
    panels = {"ppl": [], "accuracy": []}
    for g in groups:
        done = [r for r in g["runs"] if r["complete"]]
        if g["kv_bytes"] is None or not done:
            continue
        metric = "accuracy" if any(r["synthetic"] for r in done) else "ppl"
        field = "final_accuracy" if metric == "accuracy" else "final_val_ppl"
        values = [r[field] for r in done if r[field] is not None]
        if not values:
            continue
        mean, std = mean_std(values)
        panels[metric].append({"group": g, "x": g["kv_bytes"], "mean": mean, "std": std, "n": len(values)})
    return {k: v for k, v in panels.items() if v}


def draw_quality_panel(ax, metric, points, assigned):
    higher = metric == "accuracy"
    vary = len({p["n"] for p in points}) > 1
    by_attention = {}
    for p in points:  # points come in the configurations' order
        by_attention.setdefault(p["group"]["attention"], []).append(p)
    for attention, pts in by_attention.items():
        colour, marker = style(attention, assigned)
        ax.plot([p["x"] for p in pts], [p["mean"] for p in pts], linestyle="none", marker=marker, markersize=8,
                color=colour, markeredgecolor="black", markeredgewidth=0.6, label=attention, zorder=3,
                gid=f"points:{attention}")
        spread = [p for p in pts if p["std"] is not None]
        if spread:
            bars = ax.errorbar([p["x"] for p in spread], [p["mean"] for p in spread],
                               yerr=[p["std"] for p in spread], fmt="none", ecolor=colour, elinewidth=1.3,
                               capsize=4, zorder=2)
            bars.lines[2][0].set_gid(f"errorbars:{attention}")
        # Name the points when the legend alone cannot tell them apart, and give n when it varies.
        for p in pts:
            note = " ".join(([p["group"]["label"]] if len(pts) > 1 else []) + ([f"n={p['n']}"] if vary else []))
            if note:
                ax.annotate(note, (p["x"], p["mean"]), textcoords="offset points", xytext=(7, 5), fontsize=8)
    xy = [(p["x"], p["mean"]) for p in points]
    front = pareto(xy, higher)
    if len(points) > 1:
        ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], drawstyle="steps-post", linestyle="--",
                color="0.3", linewidth=1.2, label="Pareto frontier", zorder=1, gid="frontier")
    if any(p["std"] is not None for p in points):
        ax.plot([], [], color="0.3", marker="|", markersize=10, linestyle="none", label="mean \u00b1 std over seeds")
    ax.set_xscale("log")
    # One tick per cache size, skipping a size within 20% of the previous
    # tick (its labels would overlap; the point keeps its own label).
    sizes = []
    for x in sorted({p["x"] for p in points}):
        if not sizes or x > 1.2 * sizes[-1]:
            sizes.append(x)
    if len(sizes) <= 12:
        ax.set_xticks(sizes)
        ax.set_xticklabels([byte_label(s) for s in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("KV-cache bytes per token, all layers (log scale)")
    if higher:
        ax.set_ylabel("final recall accuracy (higher is better)")
    else:
        ax.set_ylabel("final validation perplexity (lower is better)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_quality(panels, root, experiment):
    metrics = [m for m in ("ppl", "accuracy") if m in panels]
    width, height = QUALITY_SIZE
    fig, axes = plt.subplots(1, len(metrics), figsize=(width * len(metrics), height), squeeze=False)
    assigned = {}
    for ax, metric in zip(axes[0], metrics):
        draw_quality_panel(ax, metric, panels[metric], assigned)
        if len(metrics) > 1:
            ax.set_title("recall tasks" if metric == "accuracy" else "language modelling", fontsize=10)
    counts = [p["n"] for m in metrics for p in panels[m]]
    fig.suptitle(f"{experiment}: quality vs KV-cache memory ({seeds_text(counts)})")
    fig.tight_layout()
    return save(fig, root, "quality_vs_memory")


# ---------------------------------------------------------------- loss

def stack(runs, x_key, y_key):
    """Union of the runs' x values, and each run's y on it (NaN where it has none)."""
    pairs = [(r[x_key], r[y_key]) for r in runs if r[x_key] is not None and r[y_key] is not None]
    if not pairs:
        return None, None
    xs = np.unique(np.concatenate([x[np.isfinite(x)] for x, _ in pairs]))
    ys = np.full((len(pairs), len(xs)), np.nan)
    for i, (x, y) in enumerate(pairs):
        n = min(len(x), len(y))
        idx = np.searchsorted(xs, x[:n])
        ok = np.isfinite(x[:n])
        ys[i, idx[ok]] = y[:n][ok]
    return xs, ys


def reduce(ys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        return np.nanmean(ys, axis=0), np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)


def plot_loss(groups, root, experiment):
    fig, ax = plt.subplots(figsize=LOSS_SIZE)
    cycle = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20").colors
    assigned = {}
    per_attention = {}
    for g in groups:
        per_attention[g["attention"]] = per_attention.get(g["attention"], 0) + 1
    for i, g in enumerate(groups):
        # The attention variant's colour when it has one configuration, else a colour per configuration.
        colour = style(g["attention"], assigned)[0] if all(v == 1 for v in per_attention.values()) \
            else cycle[i % len(cycle)]
        used, n = g["used"], len(g["used"])
        label = g["label"]
        if g["unfinished"]:
            label += f" [{', '.join(sorted({r['status'] for r in used}))}]"
        if n > 1:  # seeds when they are distinct, else (re-runs of one seed) runs
            seeds = {r["seed"] for r in used}
            label += f" ({n} seeds)" if len(seeds) == n and None not in seeds else f" ({n} runs)"
        extra = [r for r in g["runs"] if r not in used]
        if extra:
            label += f" +{len(extra)} {'/'.join(sorted({r['status'] for r in extra}))} (dotted)"
        dash = ":" if g["unfinished"] else "-"
        steps, loss = stack(used, "train_step", "train_loss")
        if steps is not None:
            mean, lo, hi = reduce(loss)
            ax.plot(steps, mean, color=colour, linewidth=1.4, linestyle=dash, label=label, gid=f"train:{g['label']}")
            if n > 1:
                ax.fill_between(steps, lo, hi, color=colour, alpha=0.2, linewidth=0, gid=f"band:{g['label']}")
        else:
            ax.plot([], [], color=colour, linestyle=dash, label=label)
        steps, val = stack(used, "eval_step", "val_loss")
        if steps is not None:
            mean, lo, hi = reduce(val)
            bars = ax.errorbar(steps, mean, yerr=[mean - lo, hi - mean] if n > 1 else None, fmt="o", markersize=4,
                               color=colour, markeredgecolor="black", markeredgewidth=0.4, capsize=2,
                               elinewidth=1, zorder=3)
            bars.lines[0].set_gid(f"val:{g['label']}")
            if n > 1:
                bars.lines[2][0].set_gid(f"valbars:{g['label']}")
        # Unfinished runs of a configuration that has complete ones: thin, dotted, outside the mean.
        for r in g["runs"]:
            if r not in used and r["train_step"] is not None and r["train_loss"] is not None:
                ax.plot(r["train_step"], r["train_loss"], color=colour, linewidth=0.8, linestyle=":", alpha=0.7,
                        gid=f"extra:{r['name']}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"{experiment}: train loss (line: mean over seeds, band: min\u2013max) "
                 f"and validation loss (markers)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(groups) > 8 else 1)
    fig.tight_layout()
    return save(fig, root, "loss")


# ---------------------------------------------------------------- perplexity vs context

def context_lines(runs, by_attention):
    """{(attention or None, line key): (contexts, per-run ppl matrix)}: each run's newest row per (line, context)."""
    # Rows evaluated with another RoPE base (eval's position.theta=...) make lines of their own.
    thetas = {row[3] for r in runs for row in r["context"] if row[0].startswith("rope")}
    per_line = {}
    for r in runs:
        newest = {}
        for key, context, ppl, theta in r["context"]:
            if len(thetas) > 1 and key.startswith("rope") and theta is not None:
                key = key.replace("rope", f"rope \u03b8={theta:g}", 1)
            newest[(key, context)] = ppl
        for (key, context), ppl in newest.items():
            line = (r["attention"] if by_attention else None, key)
            per_line.setdefault(line, {}).setdefault(r["dir"], {})[context] = ppl
    lines = {}
    for line, by_run in per_line.items():
        contexts = np.array(sorted({c for v in by_run.values() for c in v}), dtype=np.float64)
        ys = np.full((len(by_run), len(contexts)), np.nan)
        for i, values in enumerate(by_run.values()):
            for c, ppl in values.items():
                ys[i, int(np.searchsorted(contexts, c))] = ppl
        lines[line] = (contexts, ys)
    return lines


def plot_context(runs, root, experiment):
    measured = [r for r in runs if r["context"]]
    # Several attention variants: a line per variant and position encoding (colour: variant,
    # dashes: position), so that the variants are not averaged together.
    by_attention = CONTEXT_SPLIT_BY_ATTENTION and len({r["attention"] for r in measured}) > 1
    lines = context_lines(measured, by_attention)
    fig, ax = plt.subplots(figsize=CONTEXT_SIZE)
    colours = plt.get_cmap("tab10").colors
    dashes = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
    keys = sorted({k for _, k in lines}, key=lambda k: (k.split(" + ")[0], " + " in k, k))
    positions = sorted({k.split(" + ")[0] for k in keys})
    assigned = {}
    all_y = []
    for attention, key in sorted(lines, key=lambda line: (line[0] or "", keys.index(line[1]))):
        contexts, ys = lines[(attention, key)]
        mean, lo, hi = reduce(ys)
        n = len(ys)
        if by_attention:
            colour, dash = style(attention, assigned)[0], dashes[keys.index(key) % len(dashes)]
        elif len(positions) > 1:  # colour: position encoding, dashes: its scalings
            base = key.split(" + ")[0]
            colour = colours[positions.index(base) % len(colours)]
            dash = dashes[[k for k in keys if k.split(" + ")[0] == base].index(key) % len(dashes)]
        else:
            colour, dash = colours[keys.index(key) % len(colours)], "-"
        name = f"{attention} {key}" if by_attention else key
        ax.plot(contexts, mean, marker="o", markersize=4, color=colour, linestyle=dash,
                label=f"{name} ({n} run{'s' if n > 1 else ''})", gid=f"context:{name}")
        if n > 1:
            ax.fill_between(contexts, lo, hi, color=colour, alpha=0.18, linewidth=0, gid=f"contextband:{name}")
        all_y.extend(v for v in np.concatenate([lo, hi]) if np.isfinite(v))
    seq_lens = {(r["config"] or {}).get("train.seq_len") for r in measured}
    if len(seq_lens) == 1 and None not in seq_lens:
        try:
            ax.axvline(float(seq_lens.pop()), color="0.4", linestyle=":", linewidth=1, label="training length",
                       gid="train_len")
        except ValueError:
            pass
    ax.set_xscale("log", base=2)
    contexts = sorted({c for cs, _ in lines.values() for c in cs})
    if len(contexts) <= 14:
        ax.set_xticks(contexts)
        ax.set_xticklabels([f"{c:g}" for c in contexts])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if all_y and min(all_y) > 0 and max(all_y) / min(all_y) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("validation perplexity")
    ax.set_title(f"{experiment}: perplexity vs context length (mean over runs, band: min\u2013max)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, root, "ppl_vs_context")


# ---------------------------------------------------------------- main

def check_summary(root, groups):
    """Warns when a collected summary_configs.csv no longer matches the run files."""
    path = os.path.join(root, "summary_configs.csv")
    if not os.path.isfile(path):
        return
    mine = [g for g in groups if g["experiment"] is not None and os.path.dirname(g["runs"][0]["dir"])
            == os.path.abspath(root)]
    if not mine:
        return
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        theirs = sorted(int(float(r["n"] or 0)) for r in rows)
    except (OSError, KeyError, ValueError):
        return
    ours = sorted(sum(1 for r in g["runs"] if r["complete"]) for g in mine)
    if theirs != ours:
        print(f"plot.py: note: {path} has {len(theirs)} configurations with n = {theirs}, the run files give "
              f"{len(ours)} with n = {ours}; plotted from the run files (re-run `attnlab collect` to update it)",
              file=sys.stderr)


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
        print(f"plot.py: no run.h5 found under {root}: nothing to plot", file=sys.stderr)
        return 2
    runs = []
    for path in paths:
        try:
            run = read_run(path, root)
        except (OSError, KeyError, ValueError) as e:
            print(f"plot.py: warning: skipping unreadable {path}: {e}", file=sys.stderr)
            continue
        if not run["complete"]:
            print(f"plot.py: warning: {path} has status '{run['status']}': left out of means and quality",
                  file=sys.stderr)
        runs.append(run)
    if not runs:
        print(f"plot.py: no readable run.h5 under {root}", file=sys.stderr)
        return 2

    groups = group_runs(runs)
    check_summary(root, groups)
    experiment = experiment_name(root, groups)
    written = []
    panels = quality_points(groups)
    if panels:
        written += plot_quality(panels, root, experiment)
    else:
        print("plot.py: note: no complete run with kv_bytes_per_token and a final quality: "
              "no quality_vs_memory plot", file=sys.stderr)
    written += plot_loss(groups, root, experiment)
    if any(r["context"] for r in runs):
        written += plot_context(runs, root, experiment)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
