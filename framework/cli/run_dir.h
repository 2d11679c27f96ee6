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
  // The tokenizer saved with the run (<run_dir>/tokenizer/), checked against
  // the sha256 run.h5 recorded; never retrained.
  std::shared_ptr<const data::Tokenizer> tokenizer;
  data::Dataset dataset;  // only with with_data; prepared with the run's own tokenizer
  model::TransformerLM model{nullptr};
  std::filesystem::path checkpoint;
};

// UserError naming the directory when it holds no config.yaml, no checkpoint,
// no saved tokenizer, or a tokenizer whose hash differs from run.h5's; also
// when the prepared data was tokenized by another tokenizer. `overrides`
// change the run's config before the model is built; only position.*
// settings (not position.kind) and attention.cache_dtype may change, since the
// weights fix everything else (`eval` applies RoPE scaling at evaluation time
// this way, and `eval`/`generate` decode through an int8 or fp8 cache).
LoadedRun load_run(const std::filesystem::path& run_dir, const std::string& device, bool with_data = true,
                   const std::vector<std::string>& overrides = {});

}  // namespace attnlab::cli
