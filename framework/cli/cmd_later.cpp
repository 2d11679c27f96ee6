// Subcommands whose work arrives with a later step. Each is registered with its
// final name and arguments so that `--help` is already truthful, and running it
// says plainly that it is not available yet (exit 2).
#include "cli/commands.h"

namespace attnlab::cli {
namespace {
void add_pending(CLI::App& app, Action& action, const std::string& name, const std::string& help,
                 const std::string& step) {
  auto* cmd = app.add_subcommand(name, help + " [not available yet: " + step + "]");
  cmd->allow_extras();
  cmd->callback([&action, name, step] { action = [name, step] { return not_available(name, step); }; });
}
}  // namespace

void add_bench(CLI::App& app, Action& action) {
  add_pending(app, action, "bench", "Training and decode benchmarks", "step 6 (benchmarks)");
}

}  // namespace attnlab::cli
