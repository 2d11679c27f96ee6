// `attnlab collect results/<experiment>`: a sweep's runs as one table.
//
// Reads the manifest (or, without one, every run directory below) and each
// run's run.h5, and writes beside them:
//   summary.csv / summary.h5 /runs     one row per run: id, status, seed, the
//       swept values, final metrics, perplexity at each evaluated context
//       length, KV-cache bytes per token and parameter counts;
//   summary_configs.csv / summary.h5 /configs   one row per configuration
//       (the runs that differ only in their seed): n and the mean and sample
//       standard deviation of every metric over its complete runs.
// The same runs give byte-identical files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace attnlab::sweep {

using Cell = std::variant<double, std::string>;

// Named columns and rows of cells; every row has every column.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
};

struct Summary {
  Table runs;
  Table configs;
};

// Reads the runs of a sweep directory. UserError when it holds no run.
Summary collect(const std::filesystem::path& sweep_dir);

// Writes summary.csv, summary_configs.csv and summary.h5 into `sweep_dir`, atomically.
void write_summary(const std::filesystem::path& sweep_dir, const Summary& s);

}  // namespace attnlab::sweep
