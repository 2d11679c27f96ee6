// Loading a run directory: config.yaml through the same schema and rules as
// compose(), then the tokenizer and the newest checkpoint's weights.
#include "cli/run_dir.h"

#include <fmt/format.h>

#include "config/overrides.h"
#include "config/rules.h"
#include "config/schema.h"
#include "config/yaml_load.h"
#include "core/error.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "results/run_log.h"
#include "runtime/device.h"
#include "train/checkpoint.h"
#include "train/run_directory.h"

namespace attnlab::cli {
namespace fs = std::filesystem;

namespace {

std::string recorded_string(const results::RunLog& log, const char* name) {
  const auto* v = log.attr("/data", name);
  return v != nullptr && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : std::string();
}

// The run's own tokenizer, verified against the hash run.h5 recorded at train start.
std::shared_ptr<const data::Tokenizer> run_tokenizer(const fs::path& run_dir, const RunConfig& cfg) {
  const fs::path run_file = run_dir / "run.h5";
  if (!fs::exists(run_file)) throw_user_error("", run_dir.string(), "not a run directory: it holds no run.h5");
  const auto log = results::RunLog::load(run_file);
  const std::string recorded = recorded_string(log, "tokenizer_sha256");
  const fs::path dir = run_dir / "tokenizer";
  const std::string file = data::tokenizer_file_name(cfg.data.tokenizer);
  if (recorded.empty() || !fs::is_directory(dir) || (!file.empty() && !fs::exists(dir / file))) {
    throw_user_error("", run_dir.string(), fmt::format("the run has no saved tokenizer ({}{} and /data/tokenizer_sha256 "
                                                       "in run.h5); it was trained before runs kept theirs: train it "
                                                       "again (--restart) rather than use a retrained tokenizer",
                                                       (dir / file).string(), file.empty() ? "/" : ""));
  }
  const std::string actual = data::tokenizer_hash(cfg.data.tokenizer, dir);
  if (actual != recorded) {
    throw_user_error("", run_dir.string(), fmt::format("the saved tokenizer {} has sha256 {}, but run.h5 recorded {}: it "
                                                       "is not the tokenizer this run was trained with",
                                                       (dir / file).string(), actual, recorded));
  }
  return data::open_tokenizer(cfg.data.tokenizer, dir);
}

// Applies evaluation-time overrides to a run's resolved config tree.
void apply_eval_overrides(config::Node& root, const std::vector<std::string>& texts,
                          std::vector<Diagnostic>& problems) {
  for (const auto& o : config::parse_overrides(texts)) {
    if (o.op != config::OverrideOp::Set || o.is_sweep() || !o.value) {
      problems.push_back({o.key, o.origin, "evaluation takes plain key=value overrides (no sweeps, +, ++ or ~)"});
    } else if ((!o.key.starts_with("position.") || o.key == "position.kind") && o.key != "attention.cache_dtype") {
      problems.push_back({o.key, o.origin,
                          "only position settings (position.theta, position.scaling.*, ...) and "
                          "attention.cache_dtype can change at evaluation; the trained weights fix the rest, "
                          "including position.kind"});
    } else if (!config::find_key(o.key)) {
      problems.push_back({o.key, o.origin, fmt::format("no such key (did you mean '{}'?)", config::suggest_key(o.key))});
    } else {
      root.set_path(o.key, *o.value);
    }
  }
}
}  // namespace

LoadedRun load_run(const fs::path& run_dir, const std::string& device_name, bool with_data,
                   const std::vector<std::string>& overrides) {
  const fs::path config_file = run_dir / "config.yaml";
  if (!fs::exists(config_file)) {
    throw_user_error("", run_dir.string(), "not a run directory: it holds no config.yaml");
  }
  auto loaded = config::load_yaml_file(config_file, config::display_path(config_file));
  std::vector<Diagnostic> problems;
  apply_eval_overrides(loaded.root, overrides, problems);
  if (!problems.empty()) throw UserError(std::move(problems));
  LoadedRun run;
  run.config = config::to_run_config(loaded.root, problems);
  config::check_rules(run.config, loaded.root, {}, problems);
  if (!problems.empty()) throw UserError(std::move(problems));

  // The newest checkpoint the run file lists whose bytes still match their
  // checksum (a garbled newest one falls back to the one before).
  auto checkpoint = train::latest_checkpoint(run_dir);
  if (checkpoint && fs::exists(run_dir / "run.h5")) {
    checkpoint = train::verified_checkpoint(run_dir, results::RunLog::load(run_dir / "run.h5"));
    if (!checkpoint)
      throw_user_error("", run_dir.string(), "no checkpoint of the run matches the sha256 its run.h5 records: "
                                             "they were changed or damaged after training");
  }
  if (!checkpoint) {
    throw_user_error("", run_dir.string(), "the run has no checkpoint yet (train it first, or wait for its first "
                                           "checkpoint)");
  }
  run.checkpoint = *checkpoint;
  if (run.config.data.kind == "synthetic") {
    // Generated token ids: no tokenizer files, no corpus.
    run.tokenizer = std::make_shared<data::SyntheticTokenizer>(run.config.data.vocab_size);
    if (with_data) run.dataset = data::load(run.config.data);
  } else {
    run.tokenizer = run_tokenizer(run_dir, run.config);
  }
  if (with_data && run.config.data.kind != "synthetic") {
    run.dataset = data::load(run.config.data, run_dir / "tokenizer");
    if (run.dataset.tokenizer_sha256 != data::tokenizer_hash(run.config.data.tokenizer, run_dir / "tokenizer")) {
      throw_user_error("", run_dir.string(), fmt::format("the prepared data in {} was tokenized by another tokenizer "
                                                         "than this run's; remove that directory to re-prepare it "
                                                         "with the run's tokenizer",
                                                         run.dataset.tokens_dir.string()));
    }
    run.dataset.tokenizer = run.tokenizer;
  }
  auto model_cfg = run.config.model;
  model_cfg.vocab_size = run.tokenizer->vocab_size();
  run.model = model::TransformerLM(model_cfg);
  train::load_model_weights(run.checkpoint, *run.model, select_device(device_name, "--device"));
  run.model->eval();
  return run;
}

}  // namespace attnlab::cli
