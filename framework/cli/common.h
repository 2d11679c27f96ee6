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

// Validators for numeric flags, the way the schema checks keys: the value
// must parse whole, be finite (NaN passes CLI11's own ranges), and lie in
// the range, which the message prints as written ("a number in (0, 1]")
// rather than as a 309-digit bound.
CLI::Validator number_in(double lo, double hi, bool lo_open = false, bool hi_open = false);
CLI::Validator integer_in(int64_t lo, int64_t hi);

// A list flag: one comma-separated value each time it appears (it may
// repeat), never the arguments after it, so overrides and flags can come in
// any order. Each element is checked by `element`; split_list() gives them.
CLI::Option* add_list_option(CLI::App& cmd, const std::string& name, std::vector<std::string>& raw,
                             const std::string& help, const CLI::Validator& element);
std::vector<std::string> split_list(const std::vector<std::string>& raw);

config::ComposeRequest make_request(const ConfigArgs& args, std::vector<std::string> leading_overrides = {});

}  // namespace attnlab::cli
