// `attnlab collect results/<experiment>`: the sweep's runs as one table
// (summary.csv, summary_configs.csv, summary.h5; sweep/collect.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "cli/commands.h"
#include "sweep/collect.h"

namespace attnlab::cli {

void add_collect(CLI::App& app, Action& action) {
  auto dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("collect", "Collect a sweep's runs into one table, with mean and std over seeds");
  cmd->add_option("sweep_dir", *dir, "results/<experiment> (holding sweep.yaml, or the run directories of a -m)")
      ->required();
  cmd->callback([&action, dir] {
    action = [dir] {
      const std::filesystem::path d(*dir);
      const auto summary = sweep::collect(d);
      sweep::write_summary(d, summary);
      // The per-configuration table: swept values, n, perplexity mean +- std, cache bytes.
      const auto& t = summary.configs;
      auto col = [&t](const std::string& name) {
        return static_cast<size_t>(std::find(t.columns.begin(), t.columns.end(), name) - t.columns.begin());
      };
      const size_t n_col = col("n");
      auto num = [](const sweep::Cell& c) { return std::get<double>(c); };
      // Swept-value columns as wide as their widest cell; a recall-task sweep also shows accuracy.
      std::vector<size_t> width(n_col);
      for (size_t i = 0; i < n_col; ++i) {
        width[i] = t.columns[i].size();
        for (const auto& row : t.rows) width[i] = std::max(width[i], std::get<std::string>(row[i]).size());
      }
      const bool accuracy = col("final_val_accuracy_mean") < t.columns.size();
      const auto mean_sd = [&](const std::vector<sweep::Cell>& row, const std::string& metric, const char* format) {
        const double mean = num(row[col(metric + "_mean")]), sd = num(row[col(metric + "_std")]);
        return std::isnan(mean) ? std::string("-")
               : std::isnan(sd) ? fmt::format(fmt::runtime(format), mean)
                                : fmt::format(fmt::runtime(format), mean) + " +- " + fmt::format(fmt::runtime(format), sd);
      };
      std::string header;
      for (size_t i = 0; i < n_col; ++i) header += fmt::format("{:<{}}  ", t.columns[i], width[i]);
      fmt::print("{}{:>3}  {:>20}  {}{:>12}\n", header, "n", "val ppl (mean+-std)",
                 accuracy ? fmt::format("{:>22}  ", "accuracy (mean+-std)") : "", "KV B/token");
      for (const auto& row : t.rows) {
        std::string line;
        for (size_t i = 0; i < n_col; ++i) line += fmt::format("{:<{}}  ", std::get<std::string>(row[i]), width[i]);
        fmt::print("{}{:>3}  {:>20}  {}{:>12}\n", line, num(row[n_col]), mean_sd(row, "final_val_ppl", "{:.3f}"),
                   accuracy ? fmt::format("{:>22}  ", mean_sd(row, "final_val_accuracy", "{:.3f}")) : "",
                   num(row[col("kv_bytes_per_token_mean")]));
      }
      size_t complete = 0;
      for (const auto& row : summary.runs.rows) complete += std::get<std::string>(row[1]) == "complete";
      fmt::print("{} run(s), {} complete, {} configuration(s)\nwrote {}, {} and {}\n", summary.runs.rows.size(),
                 complete, summary.configs.rows.size(), (d / "summary.csv").string(),
                 (d / "summary_configs.csv").string(), (d / "summary.h5").string());
      return 0;
    };
  });
}

}  // namespace attnlab::cli
