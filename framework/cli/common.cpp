// Shared CLI helpers.
#include "cli/common.h"

#include "config/inspect.h"
#include "core/error.h"

namespace attnlab::cli {

std::filesystem::path default_config_dir() {
  if (std::filesystem::exists("configs/config.yaml")) return "configs";
  return std::filesystem::path(ATTNLAB_SOURCE_DIR) / "configs";
}

std::string groups_footer(const std::filesystem::path& config_dir) {
  try {
    std::string groups = config::format_groups(config_dir);
    return "\n" + groups.substr(0, groups.size() - 1);
  } catch (const Error&) {
    return "";  // help must print even when the config folder is broken
  }
}

void add_config_args(CLI::App& cmd, ConfigArgs& args) {
  cmd.add_option("overrides", args.overrides, "Config overrides: key=value, group=option, +key=value, ~key, ...");
  cmd.add_option("--config-dir", args.config_dir, "Folder holding config.yaml and the config groups");
  cmd.footer([&args] {
    return groups_footer(args.config_dir.empty() ? default_config_dir() : std::filesystem::path(args.config_dir));
  });
}

config::ComposeRequest make_request(const ConfigArgs& args, std::vector<std::string> leading_overrides) {
  config::ComposeRequest request;
  request.config_dir = args.config_dir.empty() ? default_config_dir() : std::filesystem::path(args.config_dir);
  request.overrides = std::move(leading_overrides);
  request.overrides.insert(request.overrides.end(), args.overrides.begin(), args.overrides.end());
  return request;
}

}  // namespace attnlab::cli
