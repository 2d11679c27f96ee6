// Composition of a run's configuration: configs/config.yaml's defaults list,
// group options, an optional experiment file, and command-line overrides,
// then interpolation and validation against the schema.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace attnlab::config {

struct ComposeRequest {
  std::filesystem::path config_dir = "configs";            // holds config.yaml and the group folders
  std::optional<std::filesystem::path> experiment;         // experiments/NAME.yaml, composed on top
  std::vector<std::string> overrides;                      // command-line overrides, in order
};

struct Composed {
  RunConfig run;                         // typed and validated
  std::string resolved_yaml;             // the whole config after interpolation
  std::string raw_yaml;                  // the composed config before interpolation
  std::string overrides_yaml;            // the overrides as given, as a YAML list
  std::vector<std::string> overrides;    // the overrides as given
  std::vector<std::string> defaults;     // the group choices, e.g. "attention: mla"
};

// Where experiment files live for `+experiment=NAME`: the `experiments`
// folder beside config_dir.
std::filesystem::path experiments_dir(const std::filesystem::path& config_dir);

// Composes, interpolates and validates. Throws attnlab::UserError holding
// every problem found (key, origin, expectation). Writes nothing.
Composed compose(const ComposeRequest& request);

}  // namespace attnlab::config
