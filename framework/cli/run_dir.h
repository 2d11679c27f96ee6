// Reading a finished (or unfinished) run directory back: its resolved config,
// tokenizer and newest weights, for `generate` (and later `eval`).
#pragma once

#include <filesystem>

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
LoadedRun load_run(const std::filesystem::path& run_dir, const std::string& device);

}  // namespace attnlab::cli
