// Each subcommand lives in its own cli/cmd_*.cpp and registers itself on the
// root CLI11 app through one of these functions (called from main.cpp).
#pragma once

#include <CLI/CLI.hpp>

#include "config/compose.h"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace attnlab::cli {

// The action a parsed subcommand runs; returns the process exit code.
using Action = std::function<int()>;

void add_train(CLI::App& app, Action& action);
void add_sweep(CLI::App& app, Action& action);
void add_eval(CLI::App& app, Action& action);
void add_generate(CLI::App& app, Action& action);
void add_kv(CLI::App& app, Action& action);
void add_bench(CLI::App& app, Action& action);
void add_collect(CLI::App& app, Action& action);
void add_data(CLI::App& app, Action& action);
void add_explain(CLI::App& app, Action& action);
void add_convert(CLI::App& app, Action& action);

// Prints the versions of attnlab and its libraries, and the CUDA device if any.
int print_version();

// Trains one run into `run_dir` and prints its outcome; the exit code of
// `attnlab train` (0 complete or skipped, 3 diverged, 128 + signal interrupted).
// Shared by `train` and the workers of `sweep`.
int train_one(const config::Composed& composed, const std::filesystem::path& run_dir, bool restart, int64_t stop_after);


}  // namespace attnlab::cli
