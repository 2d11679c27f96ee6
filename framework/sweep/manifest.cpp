// Sweep manifests (manifest.h), as YAML through yaml-cpp.
#include "sweep/manifest.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "results/run_log.h"

namespace attnlab::sweep {
namespace fs = std::filesystem;

fs::path manifest_path(const fs::path& sweep_dir) { return sweep_dir / "sweep.yaml"; }

void write_manifest(const fs::path& path, const Manifest& m) {
  YAML::Emitter out;
  out << YAML::Comment("attnlab sweep manifest: every run of the sweep; written by `attnlab sweep`, read by its "
                       "workers and `attnlab collect`");
  out << YAML::BeginMap;
  out << YAML::Key << "experiment" << YAML::Value << m.experiment;
  out << YAML::Key << "experiment_file" << YAML::Value << m.experiment_file.string();
  out << YAML::Key << "experiment_sha256" << YAML::Value << m.experiment_sha256;
  out << YAML::Key << "overrides" << YAML::Value << YAML::Flow << m.overrides;
  out << YAML::Key << "eval" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "context" << YAML::Value << YAML::Flow << m.eval.context;
  out << YAML::Key << "recall" << YAML::Value << m.eval.recall;
  out << YAML::Key << "tokens" << YAML::Value << m.eval.tokens;
  if (!m.eval.decode.empty()) out << YAML::Key << "decode" << YAML::Value << YAML::Flow << m.eval.decode;
  out << YAML::EndMap;
  out << YAML::Key << "runs" << YAML::Value << YAML::BeginSeq;
  for (const auto& r : m.runs) {
    out << YAML::BeginMap;
    out << YAML::Key << "index" << YAML::Value << r.index;
    out << YAML::Key << "id" << YAML::Value << r.id;
    out << YAML::Key << "dir" << YAML::Value << r.dir.string();
    out << YAML::Key << "overrides" << YAML::Value << YAML::Flow << r.overrides;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  fs::create_directories(path.parent_path());
  results::atomic_write_text(path, std::string(out.c_str()) + "\n");
}

std::optional<Manifest> read_manifest(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  try {
    const YAML::Node y = YAML::LoadFile(path.string());
    Manifest m;
    m.experiment = y["experiment"].as<std::string>();
    m.experiment_file = y["experiment_file"].as<std::string>();
    if (y["experiment_sha256"]) m.experiment_sha256 = y["experiment_sha256"].as<std::string>();
    m.overrides = y["overrides"].as<std::vector<std::string>>();
    m.eval.context = y["eval"]["context"].as<std::vector<int64_t>>();
    m.eval.recall = y["eval"]["recall"].as<bool>();
    m.eval.tokens = y["eval"]["tokens"] ? y["eval"]["tokens"].as<int64_t>() : 0;
    if (y["eval"]["decode"]) m.eval.decode = y["eval"]["decode"].as<std::vector<std::string>>();
    for (const auto& r : y["runs"]) {
      m.runs.push_back({r["index"].as<int64_t>(), r["id"].as<std::string>(), r["dir"].as<std::string>(),
                        r["overrides"].as<std::vector<std::string>>()});
    }
    return m;
  } catch (const YAML::Exception& e) {
    throw UserError(fmt::format("{} is not a readable sweep manifest ({}); move it away to plan the sweep afresh",
                                path.string(), e.what()));
  }
}

EvalPlan read_eval_plan(const fs::path& experiment_file) {
  EvalPlan plan;
  YAML::Node y;
  try {
    y = YAML::LoadFile(experiment_file.string());
  } catch (const YAML::Exception& e) {
    throw UserError(fmt::format("cannot read {}: {}", experiment_file.string(), e.what()));
  }
  const YAML::Node eval = y["eval"];
  if (!eval) return plan;
  const std::string where = fmt::format("{}:{}", experiment_file.string(), eval.Mark().line + 1);
  if (!eval.IsMap()) throw_user_error("eval", where, "expected a mapping: eval: {context: [128, 256], recall: true}");
  for (const auto& entry : eval) {
    const auto key = entry.first.as<std::string>();
    try {
      if (key == "context") {
        plan.context = entry.second.IsSequence() ? entry.second.as<std::vector<int64_t>>()
                                                 : std::vector<int64_t>{entry.second.as<int64_t>()};
        for (int64_t c : plan.context)
          if (c < 1) throw_user_error("eval.context", where, fmt::format("context lengths must be positive, not {}", c));
      } else if (key == "recall") {
        plan.recall = entry.second.as<bool>();
      } else if (key == "tokens") {
        plan.tokens = entry.second.as<int64_t>();
        if (plan.tokens < 1) throw_user_error("eval.tokens", where, "must be a positive number of tokens");
      } else if (key == "decode") {
        plan.decode = entry.second.IsSequence() ? entry.second.as<std::vector<std::string>>()
                                                : std::vector<std::string>{entry.second.as<std::string>()};
        for (const auto& d : plan.decode)
          if (d != "naive" && d != "absorbed")
            throw_user_error("eval.decode", where, fmt::format("'{}' is not a decode mode: expected naive or absorbed", d));
        if (plan.context.empty() && !eval["context"])
          throw_user_error("eval.decode", where, "needs eval.context: the lengths to score the cached decode at");
      } else {
        throw_user_error("eval." + key, where, "unknown key: the eval block takes context, recall, tokens and decode");
      }
    } catch (const YAML::Exception&) {
      throw_user_error("eval." + key, where,
                       key == "context"  ? "expected a list of context lengths, e.g. [128, 256]"
                       : key == "tokens" ? "expected a number of tokens"
                       : key == "decode" ? "expected a list of decode modes, e.g. [naive, absorbed]"
                                         : "expected true or false");
    }
  }
  return plan;
}

Manifest reconcile(const std::optional<Manifest>& old, Manifest planned, bool extend) {
  if (!old) return planned;
  std::set<std::string> before, now;
  for (const auto& r : old->runs) before.insert(r.id);
  for (const auto& r : planned.runs) now.insert(r.id);
  std::vector<std::string> left, arrived;
  std::set_difference(before.begin(), before.end(), now.begin(), now.end(), std::back_inserter(left));
  std::set_difference(now.begin(), now.end(), before.begin(), before.end(), std::back_inserter(arrived));
  const bool same_eval = old->eval == planned.eval;
  if (left.empty() && arrived.empty() && same_eval) {
    planned.runs = old->runs;  // same runs, the old order
    return planned;
  }
  auto list = [](const std::vector<std::string>& ids) {
    std::string out;
    for (size_t i = 0; i < ids.size() && i < 8; ++i) out += (i ? ", " : "") + ids[i];
    return ids.size() > 8 ? fmt::format("{} and {} more", out, ids.size() - 8) : out;
  };
  if (!left.empty() || !extend || !same_eval) {
    std::string what;
    if (!left.empty()) what += fmt::format("{} run(s) no longer in it ({})", left.size(), list(left));
    if (!arrived.empty()) what += fmt::format("{}{} new run(s) ({})", what.empty() ? "" : "; ", arrived.size(), list(arrived));
    if (!same_eval) what += fmt::format("{}its eval: block", what.empty() ? "" : "; ");
    throw UserError(fmt::format("the sweep differs from the one in {}: {}. {}", manifest_path(planned.runs.empty()
                                    ? fs::path() : planned.runs.front().dir.parent_path()).string(), what,
                                left.empty() && same_eval ? "Pass --extend to add the new runs"
                                                          : "Use another run.name, or move the old sweep away"));
  }
  Manifest merged = planned;
  merged.runs = old->runs;
  for (const auto& r : planned.runs) {
    if (before.contains(r.id)) continue;
    auto added = r;
    added.index = static_cast<int64_t>(merged.runs.size());
    merged.runs.push_back(added);
  }
  return merged;
}

}  // namespace attnlab::sweep
