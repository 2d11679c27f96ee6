// The text behind `attnlab --cfg`, `--cfg --raw` and the groups list in
// `attnlab --help`.
#include "config/inspect.h"

#include <fmt/format.h>

#include <algorithm>

#include "config/defaults_list.h"
#include "config/yaml_load.h"
#include "core/error.h"

namespace attnlab::config {

std::vector<GroupInfo> list_groups(const std::filesystem::path& config_dir) {
  auto groups = find_groups(config_dir);
  std::vector<DefaultsEntry> defaults;
  auto primary = config_dir / "config.yaml";
  if (std::filesystem::exists(primary)) {
    LoadedYaml y = load_yaml_file(primary, display_path(primary));
    std::vector<Diagnostic> problems;
    if (const Node* d = y.root.find("defaults")) defaults = parse_defaults(*d, problems);
    if (!problems.empty()) throw UserError(problems);
  }
  std::vector<GroupInfo> out;
  for (const auto& e : defaults) {
    auto it = groups.find(e.group);
    if (e.is_self || it == groups.end()) continue;
    out.push_back({e.group, it->second, e.option});
    groups.erase(it);
  }
  for (const auto& [name, options] : groups) out.push_back({name, options, ""});
  return out;
}

std::string format_groups(const std::filesystem::path& config_dir) {
  std::vector<GroupInfo> groups;
  try {
    groups = list_groups(config_dir);
  } catch (const UserError& e) {
    return fmt::format("Config groups: unavailable ({})\n", e.what());
  }
  if (groups.empty()) return fmt::format("Config groups: none found in {}\n", display_path(config_dir));
  size_t width = 0;
  for (const auto& g : groups) width = std::max(width, g.name.size());
  std::string out = "Config groups (select with GROUP=OPTION; * marks the default):\n";
  for (const auto& g : groups) {
    std::string line;
    for (size_t i = 0; i < g.options.size(); ++i)
      line += (i ? ", " : "") + g.options[i] + (g.options[i] == g.selected ? "*" : "");
    // The launcher group configures `attnlab sweep`, never a run (sweep/launcher.h).
    if (g.name == "launcher") line += "  (attnlab sweep only; local is the default)";
    out += fmt::format("  {:<{}}  {}\n", g.name, width, line);
  }
  return out;
}

std::string format_config(const Composed& composed, bool raw) {
  std::string out = raw ? "# composed config, before interpolation\n" : "# resolved config\n";
  std::string defaults;
  for (size_t i = 0; i < composed.defaults.size(); ++i) defaults += (i ? ", " : "") + composed.defaults[i];
  out += "# defaults: [" + defaults + "]\n";
  std::string overrides;
  for (size_t i = 0; i < composed.overrides.size(); ++i) overrides += (i ? " " : "") + composed.overrides[i];
  out += "# overrides: " + (overrides.empty() ? "(none)" : overrides) + "\n";
  out += raw ? composed.raw_yaml : composed.resolved_yaml;
  return out;
}

}  // namespace attnlab::config
