// Starting a run from a converted trained run (see init_from.h).
#include "train/init_from.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdlib>

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

namespace {

// The target must be the MLA that `attnlab convert` would make of the source
// at its kv_rank and RoPE selection (model::mla_overrides, the one source of
// the conversion's widths): a hand-written experiment that differs is a
// UserError naming each key and what the source implies.
void check_conversion_target(const RunConfig& source, const RunConfig& target) {
  model::MlaConversion request;
  request.kv_rank = target.model.attention.kind == "mla" ? target.model.attention.integer("kv_rank") : 0;
  // The target's RoPE selection where it names one (else the default the
  // conversion picks, which the comparison below then reports).
  const auto& dims = target.model.position.dims;
  if (dims == "high" || dims == "low" || dims == "uniform") {
    request.rope_dims = dims;
    request.rope_fraction = target.model.position.fraction;
  }
  const config::Node tree = config::to_tree(target, "");
  std::vector<Diagnostic> problems;
  std::vector<std::string> overrides;
  try {
    overrides = model::mla_overrides(source.model, request);
  } catch (const UserError& e) {
    throw_user_error("train.init_from", "", fmt::format("its run cannot become this run's attention: {}", e.what()));
  }
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    const std::string key = o.substr(0, eq), want = o.substr(eq + 1);
    const config::Node* node = tree.at_path(key);
    const std::string have = node && node->is_scalar() ? node->value : "";
    char* end = nullptr;
    const double a = std::strtod(have.c_str(), &end);
    const bool a_number = !have.empty() && *end == '\0';
    const double b = std::strtod(want.c_str(), &end);
    const bool b_number = !want.empty() && *end == '\0';
    if (a_number && b_number ? a != b : have != want)
      problems.push_back({key, "", fmt::format("is {}, but a conversion of train.init_from's run needs {}", have, want)});
  }
  if (!problems.empty()) throw UserError(std::move(problems));
}

}  // namespace

void check_init_from(const RunConfig& cfg) {
  if (cfg.train.init_from.empty()) return;
  check_conversion_target(source_run_config(cfg.train.init_from), cfg);
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
