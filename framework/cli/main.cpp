// attnlab's command line: parses arguments, runs one subcommand, and turns
// user errors into a message and exit code 2 (no backtrace).
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  using namespace attnlab;
  CLI::App app{"attnlab: attention and KV-cache ablations on small language models"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "Print versions of attnlab, LibTorch, HDF5, yaml-cpp and CUDA");

  cli::Action action;
  cli::add_train(app, action);
  cli::add_sweep(app, action);
  cli::add_eval(app, action);
  cli::add_generate(app, action);
  cli::add_kv(app, action);
  cli::add_bench(app, action);
  cli::add_collect(app, action);
  cli::add_data(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUserError;
  }

  try {
    if (version) return cli::print_version();
    if (!action) {
      std::cout << app.help();
      return kExitUserError;
    }
    return action();
  } catch (const UserError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kExitUserError;
  } catch (const std::exception& e) {
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 1;
  }
}
