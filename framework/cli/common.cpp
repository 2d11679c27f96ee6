// Shared CLI helpers.
#include "cli/common.h"

namespace attnlab::cli {

void add_config_args(CLI::App& cmd, ConfigArgs& args) {
  cmd.add_option("overrides", args.overrides, "Config overrides: key=value, group=option, +key=value, ~key, ...");
  cmd.add_option("--config-dir", args.config_dir, "Folder holding config.yaml and the config groups");
}

config::ComposeRequest make_request(const ConfigArgs& args, std::vector<std::string> leading_overrides) {
  config::ComposeRequest request;
  if (!args.config_dir.empty()) {
    request.config_dir = args.config_dir;
  } else if (std::filesystem::exists("configs/config.yaml")) {
    request.config_dir = "configs";
  } else {
    request.config_dir = std::filesystem::path(ATTNLAB_SOURCE_DIR) / "configs";
  }
  request.overrides = std::move(leading_overrides);
  request.overrides.insert(request.overrides.end(), args.overrides.begin(), args.overrides.end());
  return request;
}

}  // namespace attnlab::cli
