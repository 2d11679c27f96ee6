#!/usr/bin/env python3
"""Sweep-shaped plot fixtures, derived with h5py from the three runs that
test_results_plot_fixture.cpp writes (mha-s0 complete, mqa-s0 complete,
gqa-s0 still running; no config_yaml, no /eval/context).

Usage: sweep_fixture.py FIXTURE_DIR OUT_DIR   (builds them for a look; check_plot.py imports build())

build(fixture_dir, out_dir) makes, under out_dir (removed first):
  sweep/      experiment "plotsweep" with a sweep.yaml (its run dirs point at
              another machine's paths, as in a copied sweep) and a config_yaml
              in every run:
                mha  seeds 0,1,2  512 B   complete
                mqa  seeds 0,1    128 B   complete, plus seed 2 still running
                gqa  seeds 0,1    256 B   complete; worse than mqa on both axes
                mla  seed 0        64 B   complete; the only seed
              mha and mqa runs have /eval/context rows: rope at 128, 256 and
              512 tokens (mha-s0 also an older, superseded row at 256) and, for
              mha, yarn x4 at 256 and 512.
  multirun/   the same runs without sweep.yaml (grouped by their config_yaml)
  single/     one run directory (mha-s0, with its context rows)
  recall/     synthetic-task runs (/eval/val_accuracy): mha seeds 0,1, mqa
              seeds 0,1 (and seed 2 still running, its accuracy low), gqa
              seed 0 (worse than mqa on both axes)
  empty/      no run file
and returns, per directory, the configurations it built: a list of
{"name", "attention", "runs": [run dirs]}, the runs of a configuration
differing only in their seed.
"""

import os
import shutil
import sys

import h5py
import numpy as np

EXPERIMENT = "plotsweep"
N_KV_HEADS = {"mha": 4, "mqa": 1, "gqa": 2, "mla": 4}


def config_yaml(attention, seed, name, seq_len=128):
    return (f"seed: {seed}\ndata_seed: {seed}\nrun:\n  name: {name}\n  root: /elsewhere/results\n"
            f"model:\n  n_layers: 2\n  d_model: 64\nattention:\n  kind: {attention}\n"
            f"  n_kv_heads: {N_KV_HEADS[attention]}\nposition:\n  kind: rope\n  scaling:\n    kind: none\n"
            f"optim:\n  betas: [0.9, 0.95]\ntrain:\n  steps: 200\n  seq_len: {seq_len}\n  threads: {seed + 1}\n"
            f"data:\n  kind: text\n  dir: /elsewhere/data-{seed}\n")


def derive(source, target, *, attention, kv_bytes, seed, shift, complete, name=EXPERIMENT, accuracy=None):
    """Copies source/run.h5 to target/run.h5 as another run: its losses shifted by `shift`
    (growing with the step, so seeds differ along the curve), its seed, variant and status set."""
    os.makedirs(target)
    path = os.path.join(target, "run.h5")
    shutil.copyfile(os.path.join(source, "run.h5"), path)
    with h5py.File(path, "r+") as f:
        f.attrs["seed"] = np.int64(seed)
        f.attrs["data_seed"] = np.int64(seed)
        f.attrs["status"] = "complete" if complete else "running"
        f.attrs["config_yaml"] = config_yaml(attention, seed, name)
        f.attrs["overrides"] = f"[attention={attention}, seed={seed}, run.name={name}]\n"
        f["model"].attrs["attention"] = attention
        f["model"].attrs["kv_bytes_per_token"] = np.int64(kv_bytes)
        train_step = f["train/step"][...]
        f["train/loss"][...] = f["train/loss"][...] + shift * (1 + train_step / 200.0)
        eval_step = f["eval/step"][...]
        val_loss = f["eval/val_loss"][...] + shift * (1 + eval_step / 200.0)
        f["eval/val_loss"][...] = val_loss
        f["eval/val_ppl"][...] = np.exp(val_loss)
        if accuracy is not None:  # a recall task: accuracy climbs to its final value
            values = accuracy * (eval_step + 50.0) / (eval_step[-1] + 50.0)
            f["eval"].create_dataset("val_accuracy", data=values, maxshape=(None,), chunks=True)
        summary = f.require_group("summary")
        if complete:
            summary.attrs["final_val_ppl"] = float(np.exp(val_loss[-1]))
            summary.attrs["final_val_loss"] = float(val_loss[-1])
        else:
            for key in list(summary.attrs):
                del summary.attrs[key]
    return target


def add_context(run_dir, rows):
    """Appends /eval/context rows [(context, ppl, scaling_kind, scaling_factor)] (columns of docs/evaluation.md)."""
    with h5py.File(os.path.join(run_dir, "run.h5"), "r+") as f:
        g = f.require_group("eval/context")
        g.attrs["scaling_kind_codes"] = "0=none, 1=linear, 2=ntk, 3=yarn"
        g.attrs["position_kind_codes"] = "0=none, 1=learned, 2=alibi, 3=rope"
        columns = {
            "step": [200.0] * len(rows),
            "context": [r[0] for r in rows],
            "ppl": [r[1] for r in rows],
            "loss": [float(np.log(r[1])) for r in rows],
            "position_kind": [3.0] * len(rows),
            "scaling_kind": [float(r[2]) for r in rows],
            "scaling_factor": [float(r[3]) for r in rows],
        }
        for name, values in columns.items():
            g.create_dataset(name, data=np.asarray(values, dtype=np.float64), maxshape=(None,), chunks=True)


def context_rows(base, seed, yarn):
    rows = [(128.0, base + 0.1 * seed, 0, 1.0), (256.0, base * 1.5 + 0.2 * seed, 0, 1.0),
            (512.0, base * 4.0 + 0.3 * seed, 0, 1.0)]
    if yarn:
        rows += [(256.0, base * 1.1 + 0.1 * seed, 3, 4.0), (512.0, base * 1.3 + 0.2 * seed, 3, 4.0)]
    return rows


def write_manifest(directory, runs):
    lines = ["# attnlab sweep manifest: a plot fixture", f"experiment: {EXPERIMENT}",
             "experiment_file: /elsewhere/experiments/plotsweep.yaml", "overrides: []", "eval:",
             "  context: [128, 256, 512]", "  recall: false", "  tokens: 0", "runs:"]
    for i, (run_id, overrides) in enumerate(runs):
        lines += [f"  - index: {i}", f"    id: {run_id}", f"    dir: /elsewhere/results/{EXPERIMENT}/{run_id}",
                  f"    overrides: [{', '.join(overrides)}]"]
    with open(os.path.join(directory, "sweep.yaml"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def build(fixture_dir, out_dir):
    mha, mqa, gqa = (os.path.join(fixture_dir, n) for n in ("mha-s0", "mqa-s0", "gqa-s0"))
    for source in (mha, mqa, gqa):
        if not os.path.isfile(os.path.join(source, "run.h5")):
            raise FileNotFoundError(f"{source}/run.h5: the plot fixture runs are missing")
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    made = {}

    # The sweep. Shifts keep gqa above mqa (256 B vs 128 B): dominated.
    sweep = os.path.join(out_dir, "sweep")
    plan = [  # (id, source, attention, bytes, seed, shift, complete)
        ("mha-s0", mha, "mha", 512, 0, 0.00, True), ("mha-s1", mha, "mha", 512, 1, 0.05, True),
        ("mha-s2", mha, "mha", 512, 2, -0.03, True),
        ("mqa-s0", mqa, "mqa", 128, 0, 0.00, True), ("mqa-s1", mqa, "mqa", 128, 1, 0.08, True),
        ("mqa-s2", gqa, "mqa", 128, 2, 0.10, False),
        ("gqa-s0", gqa, "gqa", 256, 0, 0.30, True), ("gqa-s1", gqa, "gqa", 256, 1, 0.36, True),
        ("mla-s0", mha, "mla", 64, 0, 0.60, True),
    ]
    configs = {}
    for run_id, source, attention, kv, seed, shift, complete in plan:
        d = derive(source, os.path.join(sweep, run_id), attention=attention, kv_bytes=kv, seed=seed, shift=shift,
                   complete=complete)
        configs.setdefault(attention, []).append(d)
    for seed in range(3):
        rows = context_rows(20.0, seed, yarn=True)
        if seed == 0:
            rows.insert(0, (256.0, 999.0, 0, 1.0))  # superseded by the later row for 256
        add_context(os.path.join(sweep, f"mha-s{seed}"), rows)
    for seed in range(2):
        add_context(os.path.join(sweep, f"mqa-s{seed}"), context_rows(24.0, seed, yarn=False))
    write_manifest(sweep, [(p[0], [f"attention={p[2]}", f"seed={p[4]}", f"run.name={EXPERIMENT}"]) for p in plan])
    made["sweep"] = [{"name": a, "attention": a, "runs": runs} for a, runs in configs.items()]

    # The same runs as a plain multirun: no manifest.
    multirun = os.path.join(out_dir, "multirun")
    shutil.copytree(sweep, multirun)
    os.remove(os.path.join(multirun, "sweep.yaml"))
    made["multirun"] = [{**c, "runs": [os.path.join(multirun, os.path.basename(r)) for r in c["runs"]]}
                        for c in made["sweep"]]

    # One run, as its own directory.
    single = os.path.join(out_dir, "single")
    shutil.copytree(os.path.join(sweep, "mha-s0"), single)
    made["single"] = [{"name": "mha", "attention": "mha", "runs": [single]}]

    # Synthetic recall runs: quality is accuracy; gqa (256 B, 0.5) is worse than mqa (128 B, ~0.65).
    recall = os.path.join(out_dir, "recall")
    plan = [("mha-s0", mha, "mha", 512, 0, 0.90, True), ("mha-s1", mha, "mha", 512, 1, 0.80, True),
            ("mqa-s0", mqa, "mqa", 128, 0, 0.60, True), ("mqa-s1", mqa, "mqa", 128, 1, 0.70, True),
            ("mqa-s2", gqa, "mqa", 128, 2, 0.10, False), ("gqa-s0", gqa, "gqa", 256, 0, 0.50, True)]
    configs = {}
    for run_id, source, attention, kv, seed, acc, complete in plan:
        d = derive(source, os.path.join(recall, run_id), attention=attention, kv_bytes=kv, seed=seed, shift=0.0,
                   complete=complete, name="plotrecall", accuracy=acc)
        configs.setdefault(attention, []).append(d)
    made["recall"] = [{"name": a, "attention": a, "runs": runs} for a, runs in configs.items()]

    os.makedirs(os.path.join(out_dir, "empty"))
    made["empty"] = []
    return made


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    for name, configs in build(sys.argv[1], sys.argv[2]).items():
        print(f"{os.path.join(sys.argv[2], name)}: {len(configs)} configuration(s), "
              f"{sum(len(c['runs']) for c in configs)} run(s)")
