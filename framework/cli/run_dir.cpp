// Loading a run directory: config.yaml through the same schema and rules as
// compose(), then the tokenizer and the newest checkpoint's weights.
#include "cli/run_dir.h"

#include <fmt/format.h>

#include "config/rules.h"
#include "config/schema.h"
#include "config/yaml_load.h"
#include "core/error.h"
#include "runtime/device.h"
#include "train/checkpoint.h"

namespace attnlab::cli {
namespace fs = std::filesystem;

LoadedRun load_run(const fs::path& run_dir, const std::string& device_name) {
  const fs::path config_file = run_dir / "config.yaml";
  if (!fs::exists(config_file)) {
    throw_user_error("", run_dir.string(), "not a run directory: it holds no config.yaml");
  }
  auto loaded = config::load_yaml_file(config_file, config::display_path(config_file));
  std::vector<Diagnostic> problems;
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
