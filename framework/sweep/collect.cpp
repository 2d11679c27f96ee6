// Collecting a sweep (collect.h).
#include "sweep/collect.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "core/error.h"
#include "results/h5.h"
#include "results/run_log.h"
#include "sweep/eval_rows.h"
#include "sweep/manifest.h"

namespace attnlab::sweep {
namespace fs = std::filesystem;
using results::RunLog;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Metrics read from each run, in column order: (column, group, attribute).
struct Metric {
  const char* column;
  const char* group;
  const char* attr;
};
constexpr Metric kMetrics[] = {
    {"final_val_ppl", "/summary", "final_val_ppl"},   {"final_val_loss", "/summary", "final_val_loss"},
    {"best_val_ppl", "/summary", "best_val_ppl"},     {"tokens_seen", "/summary", "tokens_seen"},
    {"kv_bytes_per_token", "/model", "kv_bytes_per_token"}, {"n_params", "/model", "n_params"},
    {"n_params_attention", "/model", "n_params_attention"},  {"ms_per_step", "/summary", "ms_per_step_median"},
};

double number(const RunLog& log, const char* group, const char* attr) {
  const auto* v = log.attr(group, attr);
  if (v == nullptr) return kNaN;
  if (const auto* d = std::get_if<double>(v)) return *d;
  if (const auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  return kNaN;
}

struct RunRow {
  std::string id;
  fs::path dir;
  std::map<std::string, std::string> swept;  // key -> value, seed apart
  std::string seed;
  std::string status;
  std::map<std::string, double> metrics;     // column -> value
};

// key=value overrides -> map (the last value of a key wins).
std::map<std::string, std::string> split_overrides(const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> out;
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos) continue;
    std::string key = o.substr(0, eq);
    if (!key.empty() && key[0] == '+') key = key.substr(1);
    out[key] = o.substr(eq + 1);
  }
  return out;
}

RunRow read_run(const ManifestRun& r) {
  RunRow row;
  row.id = r.id;
  row.dir = r.dir;
  row.swept = split_overrides(r.overrides);
  if (auto it = row.swept.find("seed"); it != row.swept.end()) {
    row.seed = it->second;
    row.swept.erase(it);
  }
  row.status = "pending";
  const fs::path file = r.dir / "run.h5";
  if (!fs::exists(file)) return row;
  RunLog log = RunLog::load(file);
  if (const auto* s = log.attr("/", "status")) row.status = std::get<std::string>(*s);
  if (row.seed.empty()) {
    const double seed = number(log, "/", "seed");
    row.seed = std::isnan(seed) ? "" : fmt::format("{}", static_cast<int64_t>(seed));
  }
  for (const auto& m : kMetrics) row.metrics[m.column] = number(log, m.group, m.attr);
  // Perplexity at each evaluated context length, evaluated as trained (other
  // position scalings are separate experiments); the newest row per length.
  // Through the full forward: ppl_ctx<L>; through MLA's cached decode:
  // ppl_naive_ctx<L>, ppl_absorbed_ctx<L>.
  const auto evaluations = read_evaluations(log, r.dir);
  for (const auto& c : evaluations.context) {
    if (!c.as_trained) continue;
    const std::string path = c.decode == "full" ? "" : c.decode + "_";
    row.metrics[fmt::format("ppl_{}ctx{}", path, c.context)] = c.ppl;
  }
  // Recall: the final validation accuracy of a recall-task run, and the
  // accuracy at each evaluated length (mean over the passkey depths).
  if (const auto accuracy = log.column("eval", "val_accuracy"); !accuracy.empty())
    row.metrics["final_val_accuracy"] = accuracy.back();
  std::map<int64_t, std::pair<double, int>> recall;  // context -> (sum, n)
  for (const auto& c : evaluations.recall)
    if (c.as_trained && c.decode == "full") {
      recall[c.context].first += c.accuracy;
      recall[c.context].second += 1;
    }
  for (const auto& [context, sum] : recall) row.metrics[fmt::format("recall_ctx{}", context)] = sum.first / sum.second;
  return row;
}

std::string format_number(double v) {
  if (std::isnan(v)) return "";
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{:.10g}", v);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string to_csv(const Table& t) {
  std::string out;
  for (size_t i = 0; i < t.columns.size(); ++i) out += (i ? "," : "") + csv_field(t.columns[i]);
  out += "\n";
  for (const auto& row : t.rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += i ? "," : "";
      if (const auto* d = std::get_if<double>(&row[i])) out += format_number(*d);
      else out += csv_field(std::get<std::string>(row[i]));
    }
    out += "\n";
  }
  return out;
}

void write_table(hid_t file, const std::string& group, const Table& t) {
  results::h5::Group g = results::h5::create_group(file, group);
  for (size_t c = 0; c < t.columns.size(); ++c) {
    const bool text = !t.rows.empty() && std::holds_alternative<std::string>(t.rows.front()[c]);
    if (text) {
      std::vector<std::string> v;
      for (const auto& r : t.rows) v.push_back(std::get<std::string>(r[c]));
      results::h5::write_strings(g.id(), t.columns[c], v);
    } else {
      std::vector<double> v;
      for (const auto& r : t.rows) v.push_back(std::get<double>(r[c]));
      results::h5::write_f64(g.id(), t.columns[c], v);
    }
  }
  // The column order, as the CSV has it.
  std::string order;
  for (const auto& c : t.columns) order += (order.empty() ? "" : ",") + c;
  results::h5::write_attr(g.id(), "columns", order);
}

// Without a manifest (a `train -m` multirun, `attnlab convert`'s runs, a
// folder of runs), what sets a run apart is its own overrides.yaml; its
// run.name and run.root only say where it lives.
std::vector<std::string> run_overrides(const fs::path& run_dir) {
  const fs::path file = run_dir / "overrides.yaml";
  std::vector<std::string> out;
  if (!fs::exists(file)) return out;
  YAML::Node list;
  try {
    list = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    throw_user_error("", file.string(), fmt::format("not a list of overrides: {}", e.what()));
  }
  if (!list.IsSequence()) return out;
  for (const auto& item : list) {
    if (!item.IsScalar()) continue;
    const auto text = item.as<std::string>();
    if (!text.starts_with("run.name=") && !text.starts_with("run.root=")) out.push_back(text);
  }
  return out;
}

}  // namespace

Summary collect(const fs::path& sweep_dir) {
  std::vector<ManifestRun> runs;
  if (const auto m = read_manifest(manifest_path(sweep_dir))) {
    runs = m->runs;
  } else if (fs::is_directory(sweep_dir)) {  // a `train -m` multirun: its run directories
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(sweep_dir))
      if (fs::exists(e.path() / "run.h5")) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs)
      runs.push_back({static_cast<int64_t>(runs.size()), d.filename().string(), d, run_overrides(d)});
  }
  if (runs.empty())
    throw_user_error("", sweep_dir.string(), "holds no sweep: no sweep.yaml and no run directory with a run.h5");

  std::vector<RunRow> rows;
  std::set<std::string> swept_keys, metric_columns;
  for (const auto& r : runs) {
    rows.push_back(read_run(r));
    for (const auto& [k, v] : rows.back().swept) swept_keys.insert(k);
    for (const auto& [k, v] : rows.back().metrics) metric_columns.insert(k);
  }
  // Only keys whose values differ between runs are swept (run.name and other
  // overrides every run shares are not).
  std::erase_if(swept_keys, [&](const std::string& k) {
    const auto value = [&](const RunRow& r) { return r.swept.contains(k) ? r.swept.at(k) : std::string(); };
    return std::all_of(rows.begin(), rows.end(), [&](const RunRow& r) { return value(r) == value(rows.front()); });
  });
  for (auto& r : rows)
    std::erase_if(r.swept, [&](const auto& kv) { return !swept_keys.contains(kv.first); });
  // Metrics in a fixed order: the table's, then context lengths by length.
  std::vector<std::string> metrics;
  for (const auto& m : kMetrics) metrics.push_back(m.column);
  if (metric_columns.contains("final_val_accuracy")) metrics.push_back("final_val_accuracy");
  for (const std::string prefix : {"ppl_ctx", "ppl_naive_ctx", "ppl_absorbed_ctx", "recall_ctx"}) {
    std::vector<std::pair<int64_t, std::string>> ctx;
    for (const auto& c : metric_columns)
      if (c.starts_with(prefix) && std::isdigit(static_cast<unsigned char>(c[prefix.size()])))
        ctx.emplace_back(std::stoll(c.substr(prefix.size())), c);
    std::sort(ctx.begin(), ctx.end());
    for (const auto& [n, c] : ctx) metrics.push_back(c);
  }

  Summary s;
  s.runs.columns = {"run_id", "status", "seed"};
  for (const auto& k : swept_keys) s.runs.columns.push_back(k);
  for (const auto& m : metrics) s.runs.columns.push_back(m);
  for (const auto& r : rows) {
    std::vector<Cell> row = {r.id, r.status, r.seed};
    for (const auto& k : swept_keys) row.push_back(r.swept.contains(k) ? r.swept.at(k) : std::string());
    for (const auto& m : metrics) row.push_back(r.metrics.contains(m) ? r.metrics.at(m) : kNaN);
    s.runs.rows.push_back(std::move(row));
  }

  // Configurations: the swept values without the seed, in first-seen order.
  std::vector<std::map<std::string, std::string>> configs;
  std::vector<std::vector<const RunRow*>> members;
  for (const auto& r : rows) {
    auto it = std::find(configs.begin(), configs.end(), r.swept);
    if (it == configs.end()) {
      configs.push_back(r.swept);
      members.emplace_back();
      it = configs.end() - 1;
    }
    members[static_cast<size_t>(it - configs.begin())].push_back(&r);
  }
  s.configs.columns = {};
  for (const auto& k : swept_keys) s.configs.columns.push_back(k);
  s.configs.columns.insert(s.configs.columns.end(), {"n", "n_runs"});
  for (const auto& m : metrics) {
    s.configs.columns.push_back(m + "_mean");
    s.configs.columns.push_back(m + "_std");
  }
  for (size_t c = 0; c < configs.size(); ++c) {
    std::vector<Cell> row;
    for (const auto& k : swept_keys) row.push_back(configs[c].contains(k) ? configs[c].at(k) : std::string());
    std::vector<const RunRow*> done;
    for (const auto* r : members[c])
      if (r->status == "complete") done.push_back(r);
    row.push_back(static_cast<double>(done.size()));
    row.push_back(static_cast<double>(members[c].size()));
    for (const auto& m : metrics) {
      std::vector<double> v;
      for (const auto* r : done)
        if (r->metrics.contains(m) && !std::isnan(r->metrics.at(m))) v.push_back(r->metrics.at(m));
      double mean = kNaN, sd = kNaN;
      if (!v.empty()) {
        mean = 0;
        for (double x : v) mean += x;
        mean /= static_cast<double>(v.size());
      }
      if (v.size() > 1) {
        double ss = 0;
        for (double x : v) ss += (x - mean) * (x - mean);
        sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
      }
      row.push_back(mean);
      row.push_back(sd);
    }
    s.configs.rows.push_back(std::move(row));
  }
  return s;
}

void write_summary(const fs::path& sweep_dir, const Summary& s) {
  results::atomic_write_text(sweep_dir / "summary.csv", to_csv(s.runs));
  results::atomic_write_text(sweep_dir / "summary_configs.csv", to_csv(s.configs));
  // Built in memory and written like the CSVs (results/h5.h says why).
  const fs::path target = sweep_dir / "summary.h5";
  std::string image;
  {
    results::h5::File file = results::h5::create_memory_file(target.string());
    write_table(file.id(), "/runs", s.runs);
    write_table(file.id(), "/configs", s.configs);
    image = results::h5::file_image(file);
    file.close();
  }
  results::atomic_write_text(target, image);
}

}  // namespace attnlab::sweep
