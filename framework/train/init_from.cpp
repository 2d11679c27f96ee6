// Starting a run from a converted trained run (see init_from.h).
#include "train/init_from.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "config/rules.h"
#include "config/schema.h"
#include "config/yaml_load.h"
#include "core/error.h"
#include "data/sha256.h"
#include "results/run_log.h"
#include "train/checkpoint.h"
#include "train/run_directory.h"

namespace attnlab::train {

namespace fs = std::filesystem;

RunConfig source_run_config(const fs::path& source_dir) {
  const fs::path file = source_dir / "config.yaml";
  if (!fs::exists(file))
    throw_user_error("train.init_from", "", fmt::format("'{}' is not a run directory: it holds no config.yaml",
                                                        source_dir.string()));
  auto loaded = config::load_yaml_file(file, config::display_path(file));
  std::vector<Diagnostic> problems;
  RunConfig cfg = config::to_run_config(loaded.root, problems);
  config::check_rules(cfg, loaded.root, {}, problems);
  if (!problems.empty()) throw UserError(std::move(problems));
  return cfg;
}

InitFrom initialise_from_run(model::TransformerLM& target, const fs::path& source_dir) {
  const RunConfig source_cfg = source_run_config(source_dir);
  const fs::path run_file = source_dir / "run.h5";
  std::optional<fs::path> checkpoint;
  if (fs::exists(run_file)) checkpoint = verified_checkpoint(source_dir, results::RunLog::load(run_file));
  if (!checkpoint)
    throw_user_error("train.init_from", "", fmt::format("'{}' has no checkpoint whose sha256 matches its run.h5: train "
                                                        "it first", source_dir.string()));
  ModelConfig mc = source_cfg.model;
  mc.vocab_size = target->config().vocab_size;
  model::TransformerLM source(mc);
  const auto device = target->parameters().front().device();
  load_model_weights(*checkpoint, *source, device);
  InitFrom out;
  out.checkpoint = *checkpoint;
  out.checkpoint_sha256 = data::sha256_file(*checkpoint);
  out.report = model::convert_to_mla(*source, *target);
  return out;
}

}  // namespace attnlab::train
