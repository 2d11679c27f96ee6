// train.init_from: a run that starts from another run's trained weights,
// converted to its own attention (attnlab convert writes such runs).
#pragma once

#include <filesystem>
#include <string>

#include "model/convert.h"
#include "model/transformer.h"

namespace attnlab::train {

struct InitFrom {
  std::filesystem::path checkpoint;  // the source checkpoint read (its sha256 verified against its run.h5)
  std::string checkpoint_sha256;
  model::ConversionReport report;
};

// Loads `source_dir`'s newest verified checkpoint into a model of its own
// config (vocabulary: the target's) and converts it into `target`.
// UserError naming train.init_from when the directory is not a trained run.
InitFrom initialise_from_run(model::TransformerLM& target, const std::filesystem::path& source_dir);

// The source run's validated config (its config.yaml), for the conversion overrides.
RunConfig source_run_config(const std::filesystem::path& source_dir);

}  // namespace attnlab::train
