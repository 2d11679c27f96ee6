// Loading a run directory: config.yaml through the same schema and rules as
// compose(), then the tokenizer and the newest checkpoint's weights.
#include "cli/run_dir.h"

#include <fmt/format.h>

#include "config/overrides.h"
#include "config/rules.h"
#include "config/schema.h"
#include "config/yaml_load.h"
#include "core/error.h"
#include "runtime/device.h"
#include "train/checkpoint.h"

namespace attnlab::cli {
namespace fs = std::filesystem;

namespace {
// Runs written before synthetic tasks existed carry the placeholder
// `data.task: copy`, which never did anything (data=synthetic was refused);
// read it as today's default so those runs still load.
void migrate_old_config(config::Node& root) {
  auto* data = root.find("data");
  auto* task = data ? data->find("task") : nullptr;
  auto* kind = data ? data->find("kind") : nullptr;
  if (task && kind && task->is_scalar() && task->value == "copy" && kind->value != "synthetic")
    *task = config::Node::scalar("mqar", task->origin);
}

// Applies evaluation-time overrides to a run's resolved config tree.
void apply_eval_overrides(config::Node& root, const std::vector<std::string>& texts,
                          std::vector<Diagnostic>& problems) {
  for (const auto& o : config::parse_overrides(texts)) {
    if (o.op != config::OverrideOp::Set || o.is_sweep() || !o.value) {
      problems.push_back({o.key, o.origin, "evaluation takes plain key=value overrides (no sweeps, +, ++ or ~)"});
    } else if (!o.key.starts_with("position.") || o.key == "position.kind") {
      problems.push_back({o.key, o.origin,
                          "only position settings (position.theta, position.scaling.*, ...) can change at "
                          "evaluation; the trained weights fix the rest, including position.kind"});
    } else if (!config::find_key(o.key)) {
      problems.push_back({o.key, o.origin, fmt::format("no such key (did you mean '{}'?)", config::suggest_key(o.key))});
    } else {
      root.set_path(o.key, *o.value);
    }
  }
}
}  // namespace

LoadedRun load_run(const fs::path& run_dir, const std::string& device_name, const std::vector<std::string>& overrides) {
  const fs::path config_file = run_dir / "config.yaml";
  if (!fs::exists(config_file)) {
    throw_user_error("", run_dir.string(), "not a run directory: it holds no config.yaml");
  }
  auto loaded = config::load_yaml_file(config_file, config::display_path(config_file));
  std::vector<Diagnostic> problems;
  migrate_old_config(loaded.root);
  apply_eval_overrides(loaded.root, overrides, problems);
  if (!problems.empty()) throw UserError(std::move(problems));
  LoadedRun run;
  run.config = config::to_run_config(loaded.root, problems);
  config::check_rules(run.config, loaded.root, {}, problems);
  if (!problems.empty()) throw UserError(std::move(problems));

  auto checkpoint = train::latest_checkpoint(run_dir);
  if (!checkpoint) {
    throw_user_error("", run_dir.string(), "the run has no checkpoint yet (train it first, or wait for its first "
                                           "checkpoint)");
  }
  run.checkpoint = *checkpoint;
  run.dataset = data::load(run.config.data);
  auto model_cfg = run.config.model;
  model_cfg.vocab_size = run.dataset.tokenizer->vocab_size();
  run.model = model::TransformerLM(model_cfg);
  train::load_model_weights(run.checkpoint, *run.model);
  run.model->to(select_device(device_name, "--device"));
  run.model->eval();
  return run;
}

}  // namespace attnlab::cli
