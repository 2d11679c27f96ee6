// Comparing run directories for the reliability tests: two run files agree
// when every curve and summary value is bit for bit the same; timings,
// timestamps, the host and the event history may differ (docs/reliability.md).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "results/run_log.h"

namespace attnlab::testing {
namespace fs = std::filesystem;
using results::AttrValue;
using results::RunLog;

// Values that measure time or name the machine: they may differ.
inline const std::set<std::string> kTimingAttrs = {"started", "finished", "hostname", "train_seconds",
                                            "ms_per_step_median", "tokens_per_s", "mfu"};
inline const std::set<std::string> kTimingColumns = {"tokens_per_s"};

// The status a run file records ("" when none).
inline std::string status_of(const fs::path& run_file) {
  const auto log = RunLog::load(run_file);
  const auto* s = log.attr("/", "status");
  return s ? std::get<std::string>(*s) : "";
}

// Every temporary file under `dir`.
inline std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().extension() == ".tmp") out.push_back(e.path().string());
  return out;
}

inline std::vector<std::string> checkpoint_names(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir / "checkpoints")) return out;
  for (const auto& e : fs::directory_iterator(dir / "checkpoints")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline bool same_bits(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }

inline bool same_value(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<double>(&a)) return same_bits(*x, std::get<double>(b));
  return a == b;
}

// What differs between two run files, timings and events aside; empty when
// they agree bit for bit.
inline std::vector<std::string> differences(const RunLog& want, const RunLog& got) {
  std::vector<std::string> out;
  std::set<std::string> groups;
  for (const auto& [g, attrs] : want.attrs()) groups.insert(g);
  for (const auto& [g, attrs] : got.attrs()) groups.insert(g);
  for (const auto& g : groups) {
    std::set<std::string> names;
    for (const auto* log : {&want, &got}) {
      const auto it = log->attrs().find(g);
      if (it != log->attrs().end())
        for (const auto& [name, v] : it->second) names.insert(name);
    }
    for (const auto& name : names) {
      if (kTimingAttrs.contains(name)) continue;
      const AttrValue* a = want.attr(g, name);
      const AttrValue* b = got.attr(g, name);
      // A checkpoint's bytes hold its training time, so only the names listed must agree.
      if (g == "/checkpoints" ? (a == nullptr) != (b == nullptr) : (!a || !b || !same_value(*a, *b)))
        out.push_back("attribute " + g + "/" + name);
    }
  }
  if (want.series_names() != got.series_names()) out.push_back("the set of series");
  for (const auto& series : want.series_names()) {
    if (want.columns(series) != got.columns(series)) out.push_back("the columns of " + series);
    for (const auto& col : want.columns(series)) {
      if (kTimingColumns.contains(col)) continue;
      const auto a = want.column(series, col);
      const auto b = got.column(series, col);
      bool same = a.size() == b.size();
      for (size_t i = 0; same && i < a.size(); ++i) same = same_bits(a[i], b[i]);
      if (!same) out.push_back("column " + series + "/" + col);
    }
  }
  return out;
}

}  // namespace attnlab::testing
