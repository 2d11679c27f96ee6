// The defaults list of config.yaml and of experiment files: which option of
// each config group is composed, in which order, and where `_self_` goes.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/node.h"
#include "core/error.h"

namespace attnlab::config {

struct DefaultsEntry {
  std::string group;        // empty for _self_
  std::string option;       // empty: the group is unset (group: null)
  bool optional = false;    // "optional group: x": a missing option file is skipped
  bool is_override = false; // "override /group: x" (experiment files)
  bool is_self = false;
  std::string origin;
};

// Reads a `defaults:` node (a list). Problems are appended; bad entries skipped.
std::vector<DefaultsEntry> parse_defaults(const Node& list, std::vector<Diagnostic>& problems);

// The config groups found under config_dir: folder name -> option names (the
// .yaml files in it, sorted).
std::map<std::string, std::vector<std::string>> find_groups(const std::filesystem::path& config_dir);

}  // namespace attnlab::config
