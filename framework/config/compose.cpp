// compose(): the defaults list picks one option per group, the experiment
// file and the overrides go on top, then interpolation, the schema and the
// cross-key rules. Every problem found on the way is collected and thrown
// together as one UserError; nothing is written anywhere.
#include "config/compose.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "config/defaults_list.h"
#include "config/interpolate.h"
#include "config/overrides.h"
#include "config/rules.h"
#include "config/scalars.h"
#include "config/schema.h"
#include "config/yaml_load.h"
#include "core/error.h"

namespace attnlab::config {

namespace {

std::string option_list(const std::vector<std::string>& options) {
  std::string s;
  for (size_t i = 0; i < options.size(); ++i) s += (i ? ", " : "") + options[i];
  return s;
}

class Composer {
 public:
  explicit Composer(const ComposeRequest& r) : req_(r), groups_(find_groups(r.config_dir)) {}

  Composed run() {
    std::vector<Override> overrides = parse_all();
    const std::filesystem::path primary_path = req_.config_dir / "config.yaml";
    if (!std::filesystem::is_regular_file(primary_path)) {
      problems_.push_back({"", display_path(primary_path), "no such file: run attnlab from the repository root, "
                                                           "or pass the folder that holds config.yaml"});
      throw UserError(problems_);
    }
    LoadedYaml primary = load(primary_path);
    std::vector<DefaultsEntry> defaults = take_defaults(primary.root);
    std::erase_if(defaults, [&](const DefaultsEntry& e) { return !e.is_self && !known_group(e.group, e.origin); });

    // The experiment file: from the request, or +experiment=NAME.
    std::optional<LoadedYaml> experiment;
    std::optional<std::filesystem::path> exp_path = req_.experiment;
    for (const auto& o : overrides)
      if (o.key == "experiment" && o.value && o.op != OverrideOp::Delete) exp_path = experiment_file(o);
    if (exp_path) {
      experiment = load(*exp_path);
      if (experiment->package != "_global_")
        problems_.push_back({"", display_path(*exp_path) + ":1",
                             "an experiment composes at the top level: start it with '# @package _global_'"});
      experiment->root.erase("sweep");  // read by plan_multirun
      experiment->root.erase("eval");   // read by attnlab sweep (evaluations after training)
      experiment->root.erase("launcher");  // read by attnlab sweep (how it launches runs)
      for (const auto& e : take_defaults(experiment->root)) choose(defaults, e.group, e.option, e.origin, true);
    }
    for (const auto& o : overrides)
      if (is_group_override(o)) apply_group_override(defaults, o);

    Node tree = schema_defaults();
    bool self_seen = false;
    for (const auto& e : defaults) {
      if (e.is_self) {
        merge_into(tree, primary.root);
        self_seen = true;
      } else if (!e.option.empty()) {
        merge_group(tree, e);
        chosen_.push_back(e.group + ": " + e.option);
      }
    }
    if (!self_seen) merge_into(tree, primary.root);  // Hydra 1.1+: _self_ last by default
    if (experiment) merge_into(tree, experiment->root);
    for (const auto& o : overrides)
      if (!is_group_override(o) && o.key != "experiment") apply_value_override(tree, o);

    Composed out;
    out.raw_yaml = to_yaml(tree);
    interpolate(tree, problems_);
    std::set<std::string> invalid;
    for (const auto& d : problems_) invalid.insert(d.key);
    out.run = to_run_config(tree, problems_, invalid);
    for (const auto& d : problems_) invalid.insert(d.key);
    check_rules(out.run, tree, invalid, problems_);
    if (!problems_.empty()) throw UserError(problems_);

    out.resolved_yaml = to_yaml(tree);
    Node list = Node::sequence();
    for (const auto& t : req_.overrides) list.items.push_back(Node::scalar(t, "", true));
    out.overrides_yaml = list.items.empty() ? "[]\n" : to_yaml(list);
    out.overrides = req_.overrides;
    out.defaults = chosen_;
    return out;
  }

 private:
  std::vector<Override> parse_all() {
    std::vector<Override> out;
    for (size_t i = 0; i < req_.overrides.size(); ++i) {
      try {
        Override o = parse_override(req_.overrides[i], static_cast<int>(i) + 1);
        if (o.is_sweep()) {
          problems_.push_back({o.key, o.origin,
                               "is a sweep; sweeps need a multirun (attnlab train -m ...) or a single value here"});
          continue;
        }
        if (o.key == "launcher" || o.key.rfind("launcher.", 0) == 0) {
          problems_.push_back({o.key, o.origin,
                               "configures how `attnlab sweep` launches runs (configs/launcher/), not a run: pass it "
                               "to attnlab sweep"});
          continue;
        }
        out.push_back(std::move(o));
      } catch (const UserError& e) {
        problems_.insert(problems_.end(), e.diagnostics().begin(), e.diagnostics().end());
      }
    }
    return out;
  }

  // Loads a file; a file that cannot be read or parsed stops composition,
  // with the problems found so far.
  LoadedYaml load(const std::filesystem::path& path) {
    try {
      return load_yaml_file(path, display_path(path));
    } catch (const UserError& e) {
      problems_.insert(problems_.end(), e.diagnostics().begin(), e.diagnostics().end());
      throw UserError(problems_);
    }
  }

  std::vector<DefaultsEntry> take_defaults(Node& root) {
    std::vector<DefaultsEntry> out;
    if (const Node* d = root.find("defaults")) {
      out = parse_defaults(*d, problems_);
      root.erase("defaults");
    }
    return out;
  }

  std::filesystem::path experiment_file(const Override& o) {
    const std::filesystem::path dir = experiments_dir(req_.config_dir);
    std::string name = o.value->is_scalar() ? o.value->value : "";
    bool safe = !name.empty() && name.find("..") == std::string::npos && name.front() != '/' &&
                name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./") ==
                    std::string::npos;
    std::filesystem::path p = dir / (name + ".yaml");
    if (safe && std::filesystem::is_regular_file(p)) return p;
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir, ec))
      if (f.path().extension() == ".yaml") names.push_back(f.path().stem().string());
    std::sort(names.begin(), names.end());
    problems_.push_back({"experiment", o.origin,
                         fmt::format("no experiment '{}' in {}{}; experiments: {}", name, display_path(dir),
                                     did_you_mean(name, names), names.empty() ? "(none)" : option_list(names))});
    throw UserError(problems_);
  }

  bool is_group_override(const Override& o) const {
    return o.key.find('.') == std::string::npos && groups_.count(o.key) > 0;
  }

  // Checks that `option` exists in `group`; appends a problem if not.
  bool known_option(const std::string& group, const std::string& option, const std::string& origin,
                    const std::string& key) {
    const auto& options = groups_.at(group);
    if (std::find(options.begin(), options.end(), option) != options.end()) return true;
    problems_.push_back({key, origin,
                         fmt::format("no option '{}' in group '{}'{}; options: {}", option, group,
                                     did_you_mean(option, options), option_list(options))});
    return false;
  }

  bool known_group(const std::string& group, const std::string& origin) {
    if (groups_.count(group)) return true;
    std::vector<std::string> names;
    for (const auto& [g, _] : groups_) names.push_back(g);
    problems_.push_back({group, origin, "no config group '" + group + "'" + did_you_mean(group, names) +
                                            "; groups: " + option_list(names)});
    return false;
  }

  void choose(std::vector<DefaultsEntry>& defaults, const std::string& group, const std::string& option,
              const std::string& origin, bool append_if_missing) {
    if (!known_group(group, origin)) return;
    if (!option.empty() && !known_option(group, option, origin, group)) return;
    for (auto& e : defaults) {
      if (e.group == group) {
        e.option = option;
        e.origin = origin;
        e.optional = false;
        return;
      }
    }
    if (append_if_missing) defaults.push_back(DefaultsEntry{group, option, false, false, false, origin});
  }

  void apply_group_override(std::vector<DefaultsEntry>& defaults, const Override& o) {
    bool present = std::any_of(defaults.begin(), defaults.end(), [&](const auto& e) { return e.group == o.key; });
    if (o.op == OverrideOp::Delete) {
      if (!present) problems_.push_back({o.key, o.origin, "group '" + o.key + "' is not in the defaults list"});
      std::erase_if(defaults, [&](const auto& e) { return e.group == o.key; });
      return;
    }
    if (!o.value->is_scalar() && !o.value->is_null()) {
      problems_.push_back({o.key, o.origin, "expected an option name of group '" + o.key + "': " +
                                                 option_list(groups_.at(o.key))});
      return;
    }
    if (o.op == OverrideOp::Set && !present) {
      problems_.push_back({o.key, o.origin, "group '" + o.key + "' is not in the defaults list; add it with +" + o.key + "=OPTION"});
      return;
    }
    if (o.op == OverrideOp::Add && present) {
      problems_.push_back({o.key, o.origin, "group '" + o.key + "' is already in the defaults list; select with " + o.key + "=OPTION"});
      return;
    }
    choose(defaults, o.key, o.value->is_null() ? "" : o.value->value, o.origin, true);
  }

  void merge_group(Node& tree, const DefaultsEntry& e) {
    std::filesystem::path path = req_.config_dir / e.group / (e.option + ".yaml");
    if (!std::filesystem::exists(path)) {
      if (e.optional) return;
      known_option(e.group, e.option, e.origin, e.group);
      return;
    }
    // A broken group file is reported and skipped, so the other files' problems show too.
    LoadedYaml file;
    try {
      file = load_yaml_file(path, display_path(path));
    } catch (const UserError& err) {
      problems_.insert(problems_.end(), err.diagnostics().begin(), err.diagnostics().end());
      return;
    }
    if (file.root.find("defaults"))
      problems_.push_back({e.group, file.root.find("defaults")->origin,
                           "defaults lists are read from config.yaml and experiment files only"});
    file.root.erase("defaults");
    std::string package = file.package.empty() || file.package == "_group_" ? e.group : file.package;
    if (package == "_global_") {
      merge_into(tree, file.root);
    } else {
      Node* at = tree.at_path(package);
      if (!at) at = &tree.set_path(package, Node::map(file.root.origin));
      merge_into(*at, file.root);
    }
  }

  void apply_value_override(Node& tree, const Override& o) {
    auto parts = split_path(o.key);
    // Every map on the way must exist and be a map (also for +key=value).
    std::string prefix;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix = join_path(prefix, parts[i]);
      const Node* n = tree.at_path(prefix);
      if (n && !n->is_map()) {
        problems_.push_back({o.key, o.origin, fmt::format("'{}' is not a mapping (set at {})", prefix, n->origin)});
        return;
      }
    }
    Node* existing = tree.at_path(o.key);
    switch (o.op) {
      case OverrideOp::Set:
        if (!existing && find_key(o.key)) {
          problems_.push_back({o.key, o.origin, "is not set here (deleted, or its map replaced, earlier); use ++" +
                                                     o.key + "=VALUE"});
          return;
        }
        if (!existing) {
          std::string hint = suggest_key(o.key);
          if (hint.empty() && o.key.find('.') == std::string::npos) {
            std::vector<std::string> names{"experiment"};
            for (const auto& [g, _] : groups_) names.push_back(g);
            hint = did_you_mean(o.key, names);
          }
          problems_.push_back({o.key, o.origin, "no such key to override" + hint + "; use +" + o.key +
                                                     "=VALUE to add a key"});
          return;
        }
        tree.set_path(o.key, *o.value);
        return;
      case OverrideOp::Add:
        if (existing) {
          problems_.push_back({o.key, o.origin, fmt::format("already exists (set at {}); use {}=VALUE to change it, "
                                                            "or ++{}=VALUE", existing->origin, o.key, o.key)});
          return;
        }
        tree.set_path(o.key, *o.value);
        return;
      case OverrideOp::Force:
        tree.set_path(o.key, *o.value);
        return;
      case OverrideOp::Delete:
        if (!existing) {
          problems_.push_back({o.key, o.origin, "no such key to delete" + suggest_key(o.key)});
        } else if (o.value && !existing->same_value(*o.value)) {
          problems_.push_back({o.key, o.origin, fmt::format("not deleted: its value is {} (set at {}), not {}",
                                                            to_flow(*existing), existing->origin, to_flow(*o.value))});
        } else {
          tree.erase_path(o.key);
        }
        return;
    }
  }

  const ComposeRequest& req_;
  std::map<std::string, std::vector<std::string>> groups_;
  std::vector<Diagnostic> problems_;
  std::vector<std::string> chosen_;
};

}  // namespace

std::filesystem::path experiments_dir(const std::filesystem::path& config_dir) {
  return (config_dir / ".." / "experiments").lexically_normal();
}

Composed compose(const ComposeRequest& request) { return Composer(request).run(); }

}  // namespace attnlab::config
