#include "sweep/eval_rows.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"

namespace attnlab::sweep {
namespace {

// The name of `code` in a "0=full, 1=naive, 2=absorbed" table attribute.
std::string name_of(const std::string& table, double code) {
  const std::string prefix = std::to_string(static_cast<int64_t>(code)) + "=";
  size_t at = 0;
  while (at < table.size()) {
    size_t end = table.find(", ", at);
    if (end == std::string::npos) end = table.size();
    const std::string entry = table.substr(at, end - at);
    if (entry.rfind(prefix, 0) == 0) return entry.substr(prefix.size());
    at = end + 2;
  }
  return "";
}

std::string text_attr(const results::RunLog& log, const std::string& group, const char* attr) {
  const auto* v = log.attr(group, attr);
  const auto* s = v ? std::get_if<std::string>(v) : nullptr;
  return s ? *s : "";
}

struct Trained {
  std::string data_kind;
  std::string scaling_kind = "none";
  double scaling_factor = 1.0;
  std::optional<double> theta;
  std::string cache_dtype = "fp32";  // attention.cache_dtype
};

Trained trained_position(const std::filesystem::path& run_dir) {
  Trained t;
  try {
    const YAML::Node config = YAML::LoadFile((run_dir / "config.yaml").string());
    if (config["data"] && config["data"]["kind"]) t.data_kind = config["data"]["kind"].as<std::string>();
    const YAML::Node position = config["position"];
    if (position["scaling"]) {
      t.scaling_kind = position["scaling"]["kind"].as<std::string>();
      t.scaling_factor = position["scaling"]["factor"].as<double>();
    }
    if (position["theta"]) t.theta = position["theta"].as<double>();
    if (config["attention"] && config["attention"]["cache_dtype"])
      t.cache_dtype = config["attention"]["cache_dtype"].as<std::string>();
  } catch (const YAML::Exception& e) {
    throw UserError(((run_dir / "config.yaml").string()) + ": cannot read the run's position settings: " + e.what());
  }
  return t;
}

// Whether row i of a series was evaluated with the run's own position
// settings and KV-cache format (rows from before eval recorded one: as trained).
struct AsTrained {
  std::vector<double> kind, factor, theta, cache;
  std::string kind_codes, cache_codes;
  Trained trained;
  bool operator()(size_t i) const {
    const std::string k = i < kind.size() ? name_of(kind_codes, kind[i]) : "none";
    return k == trained.scaling_kind && (k == "none" || (i < factor.size() && factor[i] == trained.scaling_factor)) &&
           (!trained.theta || i >= theta.size() || theta[i] == *trained.theta) &&
           (i >= cache.size() || name_of(cache_codes, cache[i]) == trained.cache_dtype);
  }
};

AsTrained as_trained(const results::RunLog& log, const std::string& series, const Trained& trained) {
  return {log.column(series, "scaling_kind"), log.column(series, "scaling_factor"), log.column(series, "rope_theta"),
          log.column(series, "cache_dtype"),  text_attr(log, "/" + series, "scaling_kind_codes"),
          text_attr(log, "/" + series, "cache_dtype_codes"), trained};
}

}  // namespace

Evaluations read_evaluations(const results::RunLog& log, const std::filesystem::path& run_dir) {
  Evaluations out;
  const Trained trained = trained_position(run_dir);
  out.synthetic = trained.data_kind == "synthetic";
  {
    const auto context = log.column("eval/context", "context");
    const auto ppl = log.column("eval/context", "ppl");
    const auto decode = log.column("eval/context", "decode");
    const std::string decode_codes = text_attr(log, "/eval/context", "decode_codes");
    const AsTrained same = as_trained(log, "eval/context", trained);
    for (size_t i = 0; i < context.size() && i < ppl.size(); ++i)
      out.context.push_back({static_cast<int64_t>(context[i]), ppl[i],
                             i < decode.size() ? name_of(decode_codes, decode[i]) : "full", same(i)});
  }
  {
    const auto context = log.column("eval/recall", "context");
    const auto depth = log.column("eval/recall", "depth");
    const auto accuracy = log.column("eval/recall", "accuracy");
    const auto decode = log.column("eval/recall", "decode");
    const std::string decode_codes = text_attr(log, "/eval/recall", "decode_codes");
    const AsTrained same = as_trained(log, "eval/recall", trained);
    for (size_t i = 0; i < context.size() && i < accuracy.size(); ++i)
      out.recall.push_back({static_cast<int64_t>(context[i]), i < depth.size() ? depth[i] : 0.0, accuracy[i],
                            i < decode.size() ? name_of(decode_codes, decode[i]) : "full", same(i)});
  }
  return out;
}

bool Evaluations::covers(const EvalPlan& plan) const {
  const auto has_context = [&](const std::string& decode, int64_t c) {
    return std::any_of(context.begin(), context.end(),
                       [&](const ContextRow& r) { return r.as_trained && r.decode == decode && r.context == c; });
  };
  const auto has_recall = [&](const std::string& decode, int64_t c) {
    return std::any_of(recall.begin(), recall.end(),
                       [&](const RecallRow& r) { return r.as_trained && r.decode == decode && r.context == c; });
  };
  const auto has = [&](const std::string& decode) {
    return std::all_of(plan.context.begin(), plan.context.end(), [&](int64_t c) {
      return synthetic ? has_recall(decode, c) : has_context(decode, c);
    });
  };
  const bool recall_done = !plan.recall || synthetic ||
                           std::any_of(recall.begin(), recall.end(), [](const RecallRow& r) { return r.as_trained; });
  return has("full") && std::all_of(plan.decode.begin(), plan.decode.end(), has) && recall_done;
}

}  // namespace attnlab::sweep
