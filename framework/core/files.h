// Reading a whole file into memory, for the modules that each wrap it in their
// own user-facing errors (config files, corpora, a run's config.yaml).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace attnlab {

// The file's bytes, or nullopt when it cannot be opened or read.
std::optional<std::string> read_file(const std::filesystem::path& path);

}  // namespace attnlab
