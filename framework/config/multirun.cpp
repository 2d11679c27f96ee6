// Sweep expansion into jobs and their run ids. Each sweep override is one
// dimension; a zip(...) is one dimension whose values are several overrides.
#include "config/multirun.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "config/defaults_list.h"
#include "config/overrides.h"
#include "config/yaml_load.h"
#include "core/error.h"

namespace attnlab::config {

namespace {

// One position in a job's override list: fixed text, or one of several choices.
struct Slot {
  std::vector<std::vector<std::string>> choices;  // size 1 for a fixed override
  bool swept = false;
};

// The experiment named by the request or by +experiment=NAME, if it exists.
std::optional<std::filesystem::path> experiment_path(const ComposeRequest& r, const std::vector<Override>& overrides) {
  std::optional<std::filesystem::path> p = r.experiment;
  for (const auto& o : overrides)
    if (o.key == "experiment" && o.value && o.value->is_scalar() && o.op != OverrideOp::Delete)
      p = experiments_dir(r.config_dir) / (o.value->value + ".yaml");
  if (p && !std::filesystem::is_regular_file(*p)) return std::nullopt;
  return p;
}

using Groups = std::map<std::string, std::vector<std::string>>;

// One swept override's dimension: its choices (a zip's choice sets several keys).
Slot slot_of(const Override& o, const Groups& groups, std::vector<Diagnostic>& problems) {
  Slot s;
  s.swept = o.is_sweep();
  if (!o.zip.empty()) {
    for (size_t i = 0; i < o.zip.front().values.size(); ++i) {
      std::vector<std::string> texts;
      for (const auto& d : o.zip) texts.push_back(format_override(d.op, d.key, d.values[i]));
      s.choices.push_back(texts);
    }
  } else if (o.glob) {
    auto g = groups.find(o.key);
    if (g == groups.end()) {
      problems.push_back({o.key, o.origin, "glob(...) selects options of a config group, and '" + o.key + "' is not one"});
      return s;
    }
    for (const auto& option : g->second)
      for (const auto& pattern : *o.glob)
        if (glob_match(pattern, option)) {
          s.choices.push_back({format_override(o.op, o.key, Node::scalar(option))});
          break;
        }
    if (s.choices.empty()) problems.push_back({o.key, o.origin, "glob(...) matches no option of group '" + o.key + "'"});
  } else if (!o.sweep.empty()) {
    for (const auto& v : o.sweep) s.choices.push_back({format_override(o.op, o.key, v)});
  } else {
    s.choices.push_back({o.text});
  }
  return s;
}

// One combination of a product of slots: its overrides, and those that were swept.
struct Combination {
  std::vector<std::string> overrides;
  std::vector<std::string> swept;
};

// The cartesian product of `slots`, the last varying fastest (as Hydra's
// sweeper); a problem once it passes kMaxJobs.
std::vector<Combination> product(const std::vector<Slot>& slots, std::vector<Diagnostic>& problems) {
  size_t total = 1;
  for (const auto& s : slots) {
    if (s.choices.empty()) return {};  // its problem is already reported
    total *= s.choices.size();
    if (total > kMaxJobs) {
      problems.push_back({"", "the sweep", fmt::format("expands to more than {} jobs", kMaxJobs)});
      return {};
    }
  }
  std::vector<Combination> out;
  std::vector<size_t> index(slots.size(), 0);
  for (size_t n = 0; n < total; ++n) {
    Combination c;
    for (size_t i = 0; i < slots.size(); ++i) {
      const auto& texts = slots[i].choices[index[i]];
      c.overrides.insert(c.overrides.end(), texts.begin(), texts.end());
      if (slots[i].swept) c.swept.insert(c.swept.end(), texts.begin(), texts.end());
    }
    out.push_back(std::move(c));
    for (size_t i = slots.size(); i-- > 0;) {
      if (++index[i] < slots[i].choices.size()) break;
      index[i] = 0;
    }
  }
  return out;
}

bool on_command_line(const std::vector<Override>& cli, const std::string& key) {
  return std::any_of(cli.begin(), cli.end(), [&](const Override& o) { return o.key == key; });
}

// The dimensions of one `sweep:` mapping (the experiment's block, or one
// member of a `union:`), skipping keys the command line sets. `where` is the
// mapping's key path for messages ("sweep", "sweep.union[2]").
std::vector<Slot> sweep_slots(const Node& sweep, const std::string& where, const std::vector<Override>& cli,
                              const Groups& groups, std::vector<Diagnostic>& problems) {
  std::vector<Slot> slots;
  if (!sweep.is_map()) {
    problems.push_back({where, sweep.origin, "expected a mapping of key: sweep values (mha,gqa / range(0,3) / [1,2])"});
    return slots;
  }
  for (const auto& [key, value] : sweep.entries) {
    if (key == "union") {  // a list of mappings: the runs of each, one after another, as one dimension
      if (!value.is_sequence() || value.items.empty()) {
        problems.push_back({where + ".union", value.origin,
                            "expected a list of sweep mappings, e.g. [{attention: mha}, {attention: gqa, "
                            "attention.n_kv_heads: 1,2}]"});
        continue;
      }
      Slot s;
      s.swept = true;
      std::set<std::vector<std::string>> seen;  // members that the command line made equal count once
      for (size_t i = 0; i < value.items.size(); ++i) {
        const auto member = sweep_slots(value.items[i], fmt::format("{}.union[{}]", where, i), cli, groups, problems);
        for (auto& c : product(member, problems))
          if (seen.insert(c.overrides).second) s.choices.push_back(std::move(c.overrides));
      }
      if (s.choices.empty()) s.choices.push_back({});
      slots.push_back(std::move(s));
      continue;
    }
    if (on_command_line(cli, key)) continue;
    std::string text;
    if (key == "seeds") {  // seeds: N (0..N-1) or seeds: [list]: one run per seed
      const bool count = value.is_scalar() && !value.value.empty() &&
                         std::all_of(value.value.begin(), value.value.end(), ::isdigit) && std::stoll(value.value) > 0;
      if (!count && !value.is_sequence()) {
        problems.push_back({where + ".seeds", value.origin, "expected a number of seeds (seeds: 3) or a list of seeds"});
        continue;
      }
      if (on_command_line(cli, "seed")) continue;
      if (count) {
        text = "seed=range(0," + value.value + ")";
      } else {
        text = "seed=";
        for (size_t i = 0; i < value.items.size(); ++i) text += (i ? "," : "") + to_flow(value.items[i]);
      }
    } else if (value.is_sequence()) {
      text = key + "=";
      for (size_t i = 0; i < value.items.size(); ++i) text += (i ? "," : "") + to_flow(value.items[i]);
    } else if (value.is_scalar()) {
      text = key + "=" + value.value;
    } else {
      problems.push_back({where + "." + key, value.origin, "expected sweep values such as mha,gqa or [1,2]"});
      continue;
    }
    try {
      slots.push_back(slot_of(parse_override(text, 0), groups, problems));
    } catch (const UserError& e) {
      for (auto d : e.diagnostics()) problems.push_back({where + "." + key, value.origin, d.message});
    }
  }
  return slots;
}

std::string abbreviate(const std::string& override_text) {
  static const std::map<std::string, std::string> short_names = {
      {"n_kv_heads", "k"}, {"seed", "s"},     {"kv_rank", "c"},  {"q_rank", "q"},   {"rope_dim", "r"},
      {"nope_dim", "n"},   {"v_dim", "v"},    {"n_layers", "l"}, {"d_model", "d"},  {"n_heads", "h"},
      {"head_dim", "e"},   {"theta", "t"},    {"fraction", "f"}, {"factor", "x"},   {"lr", "lr"},
      {"steps", "st"},     {"batch_size", "b"}, {"seq_len", "T"}, {"max_seq_len", "L"},
      {"kind", ""},        {"original_max_len", "o"}};
  size_t eq = override_text.find('=');
  std::string key = override_text.substr(0, eq);
  key.erase(0, key.find_first_not_of("+~"));
  std::string value = eq == std::string::npos ? "del" : override_text.substr(eq + 1);
  if (key.find('.') == std::string::npos && key != "seed") return value;  // group=option
  std::string leaf = key.substr(key.rfind('.') + 1);
  auto it = short_names.find(leaf);
  return (it != short_names.end() ? it->second : leaf) + value;
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '=' || c == '-';
    if (ok) out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && (out.back() == '_' || out.back() == '.')) out.pop_back();
  while (!out.empty() && (out.front() == '_' || out.front() == '.' || out.front() == '-')) out.erase(0, 1);
  return out;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string make_run_id(const std::vector<std::string>& overrides, const std::vector<std::string>& swept) {
  std::string prefix;
  for (const auto& o : swept.empty() ? overrides : swept) {
    std::string token = sanitize(abbreviate(o));
    if (token.empty()) continue;
    if (!prefix.empty()) prefix += '-';
    prefix += token;
  }
  if (prefix.size() > 48) prefix = sanitize(prefix.substr(0, 48));
  if (prefix.empty()) prefix = "run";
  // The effective overrides: the last text per key, order-independent.
  std::map<std::string, std::string> last;
  for (const auto& o : overrides) {
    std::string key = o.substr(0, o.find('='));
    key.erase(0, key.find_first_not_of("+~"));
    last[key] = o;
  }
  std::string joined;
  for (const auto& [k, v] : last) joined += v + "\n";
  return fmt::format("{}-{:06x}", prefix, fnv1a(joined) & 0xffffff);
}

std::vector<Job> plan_multirun(const ComposeRequest& request) {
  std::vector<Override> cli = parse_overrides(request.overrides);
  std::vector<Diagnostic> problems;
  const auto groups = find_groups(request.config_dir);
  std::vector<Slot> slots;
  if (auto exp = experiment_path(request, cli)) {
    LoadedYaml y = load_yaml_file(*exp, display_path(*exp));
    if (const Node* sweep = y.root.find("sweep")) slots = sweep_slots(*sweep, "sweep", cli, groups, problems);
  }
  for (const auto& o : cli) slots.push_back(slot_of(o, groups, problems));
  if (!problems.empty()) throw UserError(problems);
  auto combinations = product(slots, problems);
  if (!problems.empty()) throw UserError(problems);

  std::vector<Job> jobs;
  for (auto& c : combinations) {
    Job job;
    job.run_id = make_run_id(c.overrides, c.swept);
    job.overrides = std::move(c.overrides);
    jobs.push_back(std::move(job));
  }

  // Validate every job; report each distinct problem once, with the first job that has it.
  std::map<std::string, size_t> seen_ids;
  std::map<std::string, size_t> seen_problems;
  for (size_t j = 0; j < jobs.size(); ++j) {
    ComposeRequest r = request;
    r.overrides = jobs[j].overrides;
    try {
      jobs[j].composed = compose(r);
    } catch (const UserError& e) {
      for (const auto& d : e.diagnostics()) {
        std::string id = d.key + "\n" + d.origin + "\n" + d.message;
        if (seen_problems.emplace(id, j).second)
          problems.push_back({d.key, d.origin, fmt::format("{} [job {} of {}: {}]", d.message, j + 1, jobs.size(),
                                                            jobs[j].run_id)});
      }
    }
    auto [it, fresh] = seen_ids.emplace(jobs[j].run_id, j);
    if (!fresh)
      problems.push_back({"", "the sweep", fmt::format("jobs {} and {} have the same overrides ({})", it->second + 1,
                                                       j + 1, jobs[j].run_id)});
  }
  if (!problems.empty()) throw UserError(problems);
  return jobs;
}

std::string format_dry_run(const std::vector<Job>& jobs) {
  std::string out;
  size_t width = 0;
  for (const auto& j : jobs) width = std::max(width, j.run_id.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::string overrides;
    for (size_t k = 0; k < jobs[i].overrides.size(); ++k) overrides += (k ? " " : "") + jobs[i].overrides[k];
    out += fmt::format("[{}/{}] {:<{}}  {}\n", i + 1, jobs.size(), jobs[i].run_id, width, overrides);
  }
  return out;
}

}  // namespace attnlab::config
