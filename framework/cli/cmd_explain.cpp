// `attnlab explain TOPIC [overrides]`: runs a small model and prints, step by
// step with shapes and measured numbers, what a design does. Topics: mla
// (bench/explain.h, docs/mla.md).
#include <fmt/format.h>

#include <memory>

#include "bench/explain.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace attnlab::cli {
namespace {
struct ExplainArgs {
  std::string topic;
  ConfigArgs config;
};
}  // namespace

void add_explain(CLI::App& app, Action& action) {
  auto args = std::make_shared<ExplainArgs>();
  auto* cmd = app.add_subcommand("explain", "Run a small model and print, with shapes and measured numbers, what a "
                                            "design does: mla (what it caches, absorption, why RoPE is decoupled, "
                                            "cache per variant)");
  cmd->add_option("topic", args->topic, "What to explain: mla")->required()->check(CLI::IsMember({"mla"}));
  add_config_args(*cmd, args->config);
  cmd->callback([&action, args] {
    action = [args] {
      // attention=mla first, so the user's overrides apply on top of it;
      // one that chooses another attention kind is refused by explain_mla.
      auto composed = config::compose(make_request(args->config, {"attention=mla"}));
      fmt::print("{}", bench::format_explanation(bench::explain_mla(composed.run)));
      return 0;
    };
  });
}

}  // namespace attnlab::cli
