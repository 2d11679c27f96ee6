// Reading a finished (or unfinished) run directory back: its resolved config,
// tokenizer and newest weights, for `generate` (and later `eval`).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "data/dataset.h"
#include "model/transformer.h"

namespace attnlab::cli {

struct LoadedRun {
  RunConfig config;
  data::Dataset dataset;
  model::TransformerLM model{nullptr};
  std::filesystem::path checkpoint;
};

// UserError naming the directory when it holds no config.yaml or no checkpoint.
// `overrides` change the run's config before the model is built; only
// position.* settings (not position.kind) may change, since the weights fix
// everything else (used by `eval` to apply RoPE scaling at evaluation time).
LoadedRun load_run(const std::filesystem::path& run_dir, const std::string& device,
                   const std::vector<std::string>& overrides = {});

}  // namespace attnlab::cli
