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
// config (vocabulary: the target's) and converts it into `target`. Call
// check_init_from on the run's config first: it refuses a target that is not
// the conversion of the source. UserError naming train.init_from when the
// directory holds no verified checkpoint.
InitFrom initialise_from_run(model::TransformerLM& target, const std::filesystem::path& source_dir);

// With train.init_from set: the checks initialise_from_run makes before it
// reads weights (a run directory, a convertible attention, the target's
// widths), so that a bad request is refused before anything is written.
void check_init_from(const RunConfig& cfg);

// The source run's validated config (its config.yaml), for the conversion overrides.
RunConfig source_run_config(const std::filesystem::path& source_dir);

}  // namespace attnlab::train
