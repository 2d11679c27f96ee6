// Inspection helpers for the command line: the composed config as YAML
// (resolved or raw), the config groups with their options, and the schema.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/compose.h"

namespace attnlab::config {

struct GroupInfo {
  std::string name;                  // "attention"
  std::vector<std::string> options;  // "gqa", "mha", "mla", "mqa"
  std::string selected;              // the option config.yaml's defaults list picks ("" if none)
};

// The groups under config_dir in defaults-list order (others after, by name).
// Reads config.yaml's defaults list; UserError if it cannot be parsed.
std::vector<GroupInfo> list_groups(const std::filesystem::path& config_dir);

// For --help: "Config groups (select with GROUP=OPTION; * marks the default):"
// then one line per group. Never throws: a broken config dir gives a one-line note.
std::string format_groups(const std::filesystem::path& config_dir);

// What `attnlab --cfg` prints: a header comment naming the chosen group
// options and the overrides, then the resolved (or, with raw, the
// pre-interpolation) config as YAML.
std::string format_config(const Composed& composed, bool raw);

}  // namespace attnlab::config
