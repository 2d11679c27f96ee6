// A sweep's manifest: results/<experiment>/sweep.yaml lists every run of the
// sweep (its index, id, directory and overrides) and what to evaluate after
// training. `attnlab sweep` writes it before the first run starts; a re-run of
// the same command compares against it, every worker (a local process or a
// Slurm array task) executes exactly one of its rows, and `attnlab collect`
// reads it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace attnlab::sweep {

struct ManifestRun {
  int64_t index = 0;                   // the row, and the Slurm array task id
  std::string id;                      // run id (config::make_run_id)
  std::filesystem::path dir;           // results/<experiment>/<id>
  std::vector<std::string> overrides;  // this run's overrides, one value each
};

// The experiment's `eval:` block: evaluations each run gets after training.
struct EvalPlan {
  std::vector<int64_t> context;  // context lengths for `attnlab eval --context`; empty: none
  bool recall = false;           // `attnlab eval --recall`
  int64_t tokens = 0;            // `attnlab eval --tokens` (scored tokens per length); 0: eval's default
  std::vector<std::string> decode;  // `attnlab eval --decode MODE` at each context length, per mode (naive, absorbed)
  bool any() const { return !context.empty() || recall || !decode.empty(); }
  bool operator==(const EvalPlan&) const = default;
};

struct Manifest {
  std::string experiment;               // NAME of experiments/NAME.yaml
  std::filesystem::path experiment_file;
  std::string experiment_sha256;        // of the experiment file when the manifest was written; workers check it
  std::vector<std::string> overrides;   // the command line's overrides
  EvalPlan eval;
  std::vector<ManifestRun> runs;
};

// The manifest's place: <root>/<name>/sweep.yaml, the parent of every run.
std::filesystem::path manifest_path(const std::filesystem::path& sweep_dir);

// Written atomically.
void write_manifest(const std::filesystem::path& path, const Manifest& m);

// nullopt when there is none; UserError naming the file when it is damaged.
std::optional<Manifest> read_manifest(const std::filesystem::path& path);

// Reads an experiment file's `eval:` block (context: [..], recall: bool);
// UserError naming the key otherwise.
EvalPlan read_eval_plan(const std::filesystem::path& experiment_file);

// Merges a newly planned sweep with the one on disk. The same runs: the old
// manifest's order is kept. Different runs: UserError naming the runs that
// left and arrived, unless `extend` and none left, in which case the new runs
// are appended after the old ones (so existing array indices stay valid).
Manifest reconcile(const std::optional<Manifest>& old, Manifest planned, bool extend);

}  // namespace attnlab::sweep
