// attnlab's command line: parses arguments, runs one subcommand, and turns
// user errors into a message and exit code 2 (no backtrace).
#include <fmt/format.h>

#include <c10/util/Logging.h>

#include <csignal>
#include <cstdlib>
#include <new>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/compose.h"
#include "config/inspect.h"
#include "config/schema.h"
#include "core/error.h"
#include "core/failpoint.h"

int main(int argc, char** argv) {
  using namespace attnlab;
  // LibTorch's allocation failures must throw (the trainer turns them into a
  // message naming the keys that size memory), never LOG(FATAL) and abort.
  FLAGS_caffe2_use_fatal_for_enforce = false;
  // A file-size limit (ulimit -f) would kill the process with SIGXFSZ in the
  // middle of a write; ignored, the write fails with EFBIG instead, and the
  // writer reports it and removes its .tmp like any other full disk.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"attnlab: attention and KV-cache ablations on small language models"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "Print versions of attnlab, LibTorch, HDF5, yaml-cpp and CUDA");
  bool show_cfg = false;
  bool raw = false;
  bool show_schema = false;
  std::string config_dir = cli::default_config_dir().string();
  app.add_flag("--cfg", show_cfg, "Print the resolved config for the overrides that follow (after full validation)");
  app.add_flag("--raw", raw, "With --cfg: print the composed config before interpolation");
  app.add_flag("--schema", show_schema, "Print every config key with its type, range, default and doc");
  app.add_option("--config-dir", config_dir, "Folder holding config.yaml and the config groups")
      ->capture_default_str();
  app.allow_extras();  // the overrides after --cfg
  app.footer([&config_dir] { return cli::groups_footer(config_dir); });

  cli::Action action;
  cli::add_train(app, action);
  cli::add_sweep(app, action);
  cli::add_eval(app, action);
  cli::add_generate(app, action);
  cli::add_kv(app, action);
  cli::add_bench(app, action);
  cli::add_collect(app, action);
  cli::add_data(app, action);
  cli::add_explain(app, action);
  cli::add_convert(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUserError;
  }

  try {
    failpoint::check_environment();  // a malformed ATTNLAB_FAILPOINT is refused before anything runs
    if (version) return cli::print_version();
    if (show_schema) {
      std::cout << config::format_schema();
      return 0;
    }
    if (show_cfg) {
      config::ComposeRequest request;
      request.config_dir = config_dir;
      request.overrides = app.remaining();
      std::cout << config::format_config(config::compose(request), raw);
      return 0;
    }
    if (!app.remaining().empty()) {
      std::string args;
      for (const auto& a : app.remaining()) args += " " + a;
      throw UserError("unexpected arguments:" + args + " (overrides go after a command, or after --cfg)");
    }
    if (!action) {
      std::cout << app.help();
      return kExitUserError;
    }
    return action();
  } catch (const UserError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kExitUserError;
  } catch (const Error& e) {  // the environment failed us: a full disk, an I/O error, out of memory
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // No backtrace reaches a user: LibTorch's errors carry one, shown only
    // with ATTNLAB_DEBUG=1. Running out of memory is the user's to fix by
    // asking for less, in any command (train says which keys; see trainer.cpp).
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    const char* debug = std::getenv("ATTNLAB_DEBUG");
    const bool full = debug != nullptr && std::string(debug) == "1";
    std::string why = c10_error && !full ? c10_error->what_without_backtrace() : e.what();
    const std::string command = app.get_subcommands().empty() ? "attnlab" : "attnlab " + app.get_subcommands()[0]->get_name();
    const bool out_of_memory = dynamic_cast<const std::bad_alloc*>(&e) != nullptr ||
                               dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr ||
                               why.find("can't allocate memory") != std::string::npos;
    if (out_of_memory) {
      fmt::print(stderr, "error: out of memory in `{}` ({}): ask for less (a smaller batch, context, --tokens or "
                         "model) or free memory\n",
                 command, why.substr(0, why.find('\n')));
    } else {
      fmt::print(stderr, "internal error in `{}`: {}{}\n", command, why,
                 full ? "" : "\n(ATTNLAB_DEBUG=1 shows where it came from)");
    }
    return 1;
  }
}
