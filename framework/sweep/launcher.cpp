#include "sweep/launcher.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "core/error.h"

namespace attnlab::sweep {
namespace fs = std::filesystem;

namespace {

bool is_launcher_override(const std::string& o) {
  return o.rfind("launcher=", 0) == 0 || o.rfind("launcher.", 0) == 0;
}

std::string keys_list() {
  std::string out;
  for (const auto& k : launcher_keys()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

int64_t integer(const YAML::Node& v, const std::string& key, const std::string& where, int64_t min) {
  int64_t n = 0;
  try {
    n = v.as<int64_t>();
  } catch (const YAML::Exception&) {
    throw_user_error("launcher." + key, where, fmt::format("expected a whole number >= {}", min));
  }
  if (n < min) throw_user_error("launcher." + key, where, fmt::format("expected a whole number >= {}, not {}", min, n));
  return n;
}

std::string text(const YAML::Node& v, const std::string& key, const std::string& where) {
  if (!v.IsScalar()) throw_user_error("launcher." + key, where, "expected a single value");
  return v.as<std::string>();
}

// A list of strings; a scalar is split at commas (devices: 0,1 / sbatch: --account=lab).
std::vector<std::string> texts(const YAML::Node& v, const std::string& key, const std::string& where) {
  std::vector<std::string> out;
  if (v.IsNull()) return out;
  if (v.IsSequence()) {
    for (const auto& item : v) out.push_back(text(item, key, where));
    return out;
  }
  const std::string s = text(v, key, where);
  for (size_t at = 0; at <= s.size();) {
    size_t end = s.find(',', at);
    if (end == std::string::npos) end = s.size();
    if (end > at) out.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

void set(LauncherConfig& c, const std::string& key, const YAML::Node& v, const std::string& where) {
  if (key == "type") {
    c.type = text(v, key, where);
    if (c.type != "local" && c.type != "slurm")
      throw_user_error("launcher.type", where, fmt::format("'{}': expected local or slurm", c.type));
  } else if (key == "jobs") {
    c.jobs = integer(v, key, where, 1);
  } else if (key == "devices") {
    c.devices = texts(v, key, where);
  } else if (key == "partition") {
    c.slurm.partition = v.IsNull() ? "" : text(v, key, where);
  } else if (key == "time") {
    c.slurm.time = v.IsNull() ? "" : text(v, key, where);
  } else if (key == "gpus_per_task") {
    c.slurm.gpus_per_task = integer(v, key, where, 0);
  } else if (key == "cpus_per_task") {
    c.slurm.cpus_per_task = integer(v, key, where, 1);
  } else if (key == "max_parallel") {
    c.slurm.max_parallel = integer(v, key, where, 0);
  } else if (key == "signal_seconds") {
    c.slurm.signal_seconds = integer(v, key, where, 0);
  } else if (key == "sbatch") {
    c.slurm.sbatch = texts(v, key, where);
  } else {
    throw_user_error("launcher." + key, where, "unknown key: a launcher takes " + keys_list());
  }
}

// Every key of a mapping (a launcher file, or an experiment's block).
void set_all(LauncherConfig& c, const YAML::Node& map, const fs::path& file) {
  const std::string where = fmt::format("{}:{}", file.string(), map.Mark().line + 1);
  if (!map.IsMap()) throw_user_error("launcher", where, "expected a mapping of launcher keys (" + keys_list() + ")");
  for (const auto& entry : map)
    set(c, entry.first.as<std::string>(), entry.second,
        fmt::format("{}:{}", file.string(), entry.first.Mark().line + 1));
}

YAML::Node load(const fs::path& file) {
  try {
    return YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    throw UserError(fmt::format("cannot read {}: {}", file.string(), e.what()));
  }
}

}  // namespace

const std::vector<std::string>& launcher_keys() {
  static const std::vector<std::string> keys = {"type",          "jobs",         "devices",        "partition",
                                                "time",          "gpus_per_task", "cpus_per_task", "max_parallel",
                                                "signal_seconds", "sbatch"};
  return keys;
}

std::vector<std::string> take_launcher_overrides(std::vector<std::string>& overrides) {
  std::vector<std::string> out;
  for (const auto& o : overrides)
    if (is_launcher_override(o)) out.push_back(o);
  std::erase_if(overrides, is_launcher_override);
  return out;
}

LauncherConfig resolve_launcher(const fs::path& config_dir, const fs::path& experiment,
                                const std::vector<std::string>& overrides, const std::string& name) {
  LauncherConfig c;
  std::string chosen = name, chosen_by = "--launcher";
  for (const auto& o : overrides) {
    if (o.rfind("launcher=", 0) != 0) continue;
    const std::string option = o.substr(9);
    if (!chosen.empty() && option != chosen)
      throw_user_error("launcher", fmt::format("override '{}'", o),
                       fmt::format("conflicts with {} {}: choose the launcher once", chosen_by, chosen));
    chosen = option;
    chosen_by = "override launcher=";
  }
  const YAML::Node exp = load(experiment);
  c.name = chosen.empty() ? "local" : chosen;
  const fs::path file = config_dir / "launcher" / (c.name + ".yaml");
  if (fs::is_regular_file(file)) {
    set_all(c, load(file), file);
  } else if (!chosen.empty() || fs::is_directory(config_dir / "launcher")) {
    std::vector<std::string> found;
    if (fs::is_directory(config_dir / "launcher"))
      for (const auto& f : fs::directory_iterator(config_dir / "launcher"))
        if (f.path().extension() == ".yaml") found.push_back(f.path().stem().string());
    std::sort(found.begin(), found.end());
    std::string options;
    for (const auto& f : found) options += (options.empty() ? "" : ", ") + f;
    throw_user_error("launcher", chosen_by == "--launcher" ? "--launcher" : "override launcher=" + c.name,
                     fmt::format("no launcher '{}': no file {} (options: {})", c.name, file.string(),
                                 options.empty() ? "none" : options));
  } else if (c.name == "slurm") {
    c.type = "slurm";  // a config folder without launcher files: the two built-in types
  }
  if (exp["launcher"]) set_all(c, exp["launcher"], experiment);
  for (const auto& o : overrides) {
    if (o.rfind("launcher.", 0) != 0) continue;
    const auto eq = o.find('=');
    const std::string where = fmt::format("override '{}'", o);
    if (eq == std::string::npos) throw_user_error("launcher", where, "expected launcher.KEY=VALUE");
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw_user_error(o.substr(0, eq), where, fmt::format("cannot read the value: {}", e.what()));
    }
    set(c, o.substr(9, eq - 9), value, where);
  }
  return c;
}

}  // namespace attnlab::sweep
