// Pieces several subcommands share: where configs live, and the positional
// override list every config-driven subcommand takes.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "config/compose.h"

namespace attnlab::cli {

struct ConfigArgs {
  std::vector<std::string> overrides;
  std::string config_dir;  // empty: ./configs if present, else the source tree's configs/
};

// ./configs when it holds config.yaml, else the source tree's configs/.
std::filesystem::path default_config_dir();

// The config groups and their options, for the end of --help.
std::string groups_footer(const std::filesystem::path& config_dir);

// Adds `[overrides...]` and `--config-dir` to a subcommand, and the config
// groups to its --help.
void add_config_args(CLI::App& cmd, ConfigArgs& args);

config::ComposeRequest make_request(const ConfigArgs& args, std::vector<std::string> leading_overrides = {});

}  // namespace attnlab::cli
