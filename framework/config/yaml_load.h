// Strict YAML loading into config::Node. Rejects what yaml-cpp would accept
// silently or what a config has no use for: duplicate keys, tags, several
// documents, non-scalar keys, deep nesting, and alias bombs.
#pragma once

#include <filesystem>
#include <string>

#include "config/node.h"

namespace attnlab::config {

inline constexpr int kMaxYamlDepth = 64;           // nested maps/sequences
inline constexpr size_t kMaxAliasExpansion = 256;  // nodes that aliases may copy, per file

struct LoadedYaml {
  Node root;            // always a map (an empty file gives an empty map)
  std::string package;  // from a "# @package NAME" header line; empty if none
};

// Parses `text`; `display` names the source in origins ("configs/model/tiny.yaml").
// Throws UserError with every problem found, each at display:line:col.
LoadedYaml load_yaml_string(const std::string& text, const std::string& display);
// Reads and parses a file. A missing or unreadable file is a UserError.
LoadedYaml load_yaml_file(const std::filesystem::path& path, const std::string& display);

// How a path is shown in messages: relative to the working directory when it
// lies below it, otherwise as given.
std::string display_path(const std::filesystem::path& path);

}  // namespace attnlab::config
