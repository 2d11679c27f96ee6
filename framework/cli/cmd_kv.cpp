// `attnlab kv [overrides] | --preset deepseek-v2`: the KV-cache accounting
// table for every attention variant at the configured shape.
#include <fmt/format.h>

#include <memory>

#include "bench/kv_report.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"

namespace attnlab::cli {
namespace {
struct KvArgs {
  ConfigArgs config;
  std::string preset;
  int64_t context = 4096;
};
}  // namespace

void add_kv(CLI::App& app, Action& action) {
  auto args = std::make_shared<KvArgs>();
  auto* cmd = app.add_subcommand("kv", "KV-cache accounting: cache parts, elements and bytes per token for every "
                                       "attention variant, and MLA's naive vs absorbed decode costs");
  add_config_args(*cmd, args->config);
  cmd->add_option("--preset", args->preset, "A published model instead of the config: deepseek-v2")
      ->check(CLI::IsMember({"deepseek-v2"}));
  cmd->add_option("--context", args->context, "Context length for the decode-cost table")
      ->check(CLI::PositiveNumber);
  cmd->callback([&action, args] {
    action = [args] {
      if (!args->preset.empty()) {
        if (!args->config.overrides.empty()) {
          throw UserError("--preset deepseek-v2 takes no overrides (it is the paper's configuration)");
        }
        fmt::print("{}", bench::deepseek_v2_report(args->context));
        return 0;
      }
      auto composed = config::compose(make_request(args->config));
      fmt::print("{}", bench::kv_report(composed.run.model, args->context));
      return 0;
    };
  });
}

}  // namespace attnlab::cli
