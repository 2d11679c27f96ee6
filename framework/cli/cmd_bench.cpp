// `attnlab bench train|decode|kv [overrides] [--preset b1|b2|b3|b5]`: the
// benchmarks of ../shared/reference/BENCHMARKS.md (bench/bench.h). Each prints
// a table and appends its figures, with the device and versions, to an HDF5
// file (default results/bench/<device>.h5). scripts/bench.sh runs them beside
// the PyTorch reference (scripts/reference/bench_ref.py) and prints ratios.
#include <fmt/format.h>
#include <torch/version.h>

#include <cctype>
#include <memory>

#include "bench/bench.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "model/attention/registry.h"
#include "runtime/device.h"

namespace attnlab::cli {
namespace {
namespace fs = std::filesystem;

// Codes in the HDF5 rows: registry order, so a new variant appends a code.
const std::vector<std::string> kVariants = model::attention_kinds();
const std::vector<std::string> kDecodes{"full", "naive", "absorbed"};

struct BenchArgs {
  std::string bench;  // train | decode | kv
  ConfigArgs config;
  std::string preset;
  int64_t steps = 20;
  int64_t warmup = 5;
  int64_t context = 0;  // decode: tokens cached before the timed steps; 0: 1024, or what model.max_seq_len leaves
  int64_t batch = 1;       // decode, kv
  int64_t length = 256;    // kv: tokens in the measured cache
  std::string decode;      // decode: naive | absorbed (MLA)
  std::string out;         // empty: results/bench/<device>.h5
};

double code_of(const std::vector<std::string>& table, const std::string& name) {
  for (size_t i = 0; i < table.size(); ++i)
    if (table[i] == name) return static_cast<double>(i);
  return -1.0;
}

std::string codes(const std::vector<std::string>& table) {
  std::string out;
  for (size_t i = 0; i < table.size(); ++i) out += fmt::format("{}{}={}", i ? ", " : "", i, table[i]);
  return out;
}

// "NVIDIA H100 80GB HBM3" -> "NVIDIA_H100_80GB_HBM3"
std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::map<std::string, double> shape_row(const RunConfig& c) {
  return {{"n_layers", static_cast<double>(c.model.n_layers)},
          {"d_model", static_cast<double>(c.model.d_model)},
          {"n_heads", static_cast<double>(c.model.n_heads)},
          {"n_kv_heads", model::attention_entry(c.model.attention.kind).declares("n_kv_heads")
                             ? static_cast<double>(c.model.attention.integer("n_kv_heads"))
                             : 0.0},
          {"attention", code_of(kVariants, c.model.attention.kind)},
          {"dtype_bits", c.train.dtype == "fp32" ? 32.0 : 16.0},
          {"threads", static_cast<double>(c.train.threads)}};
}

int run(const BenchArgs& a) {
  std::vector<std::string> leading;
  if (!a.preset.empty()) leading = bench::preset_overrides(a.preset);
  const RunConfig cfg = config::compose(make_request(a.config, leading)).run;
  const std::string device = device_description(select_device(cfg.train.device));
  const fs::path out = a.out.empty() ? fs::path("results") / "bench" / (slug(device) + ".h5") : fs::path(a.out);
  const std::string label = a.preset.empty() ? "custom" : a.preset;
  fmt::print("bench {} ({}) on {}: {} layers, d_model {}, {} heads, {} attention, {}\n", a.bench, label, device,
             cfg.model.n_layers, cfg.model.d_model, cfg.model.n_heads, cfg.model.attention.kind, cfg.train.dtype);
  std::vector<std::map<std::string, double>> rows;
  if (a.bench == "train") {
    const auto f = bench::bench_train(cfg, a.steps, a.warmup);
    fmt::print("{:>10} {:>10} {:>10} {:>12} {:>8} {:>10} {}\n", "ms/step", "p10", "p90", "tokens/s", "MFU", "params",
               "attention kernel");
    fmt::print("{:>10.2f} {:>10.2f} {:>10.2f} {:>12.0f} {:>8} {:>10} {}\n", f.timing.median_ms, f.timing.p10_ms,
               f.timing.p90_ms, f.tokens_per_s, f.mfu < 0 ? std::string("-") : fmt::format("{:.1f}%", 100 * f.mfu),
               f.n_params, f.attention_kernel);
    auto row = shape_row(cfg);
    row.insert({{"seq_len", static_cast<double>(cfg.train.seq_len)},
                {"batch", static_cast<double>(cfg.train.batch_size)},
                {"ms_per_step_median", f.timing.median_ms},
                {"ms_per_step_p10", f.timing.p10_ms},
                {"ms_per_step_p90", f.timing.p90_ms},
                {"tokens_per_s", f.tokens_per_s},
                {"mfu", f.mfu},
                {"flops_per_token", f.flops_per_token},
                {"n_params", static_cast<double>(f.n_params)},
                {"steps", static_cast<double>(f.timing.steps)},
                {"warmup", static_cast<double>(f.timing.warmup)}});
    rows.push_back(row);
  } else if (a.bench == "decode") {
    // The default fits the model: 1024 cached tokens, or fewer where
    // model.max_seq_len leaves less room beside the warm-up and timed steps.
    const int64_t context =
        a.context > 0 ? a.context : std::min<int64_t>(1024, cfg.model.max_seq_len - a.warmup - a.steps);
    if (context < 1)
      throw UserError(fmt::format("--steps {} and --warmup {} leave no room for a cached context in model.max_seq_len "
                                  "{}: lower them or raise model.max_seq_len",
                                  a.steps, a.warmup, cfg.model.max_seq_len));
    const auto f = bench::bench_decode(cfg, context, a.batch, a.decode, a.steps, a.warmup);
    fmt::print("{:>10} {:>10} {:>10} {:>12} {:>12} {:>12} {:>10}\n", "ms/step", "p10", "p90", "tokens/s",
               "weights MB", "cache MB", "GB/s");
    fmt::print("{:>10.3f} {:>10.3f} {:>10.3f} {:>12.0f} {:>12.1f} {:>12.1f} {:>10.1f}\n", f.timing.median_ms,
               f.timing.p10_ms, f.timing.p90_ms, f.tokens_per_s, f.weight_bytes / 1e6, f.cache_bytes / 1e6,
               f.gb_per_s);
    auto row = shape_row(cfg);
    row.insert({{"context", static_cast<double>(context)},
                {"batch", static_cast<double>(a.batch)},
                {"decode", code_of(kDecodes, a.decode.empty() ? "full" : a.decode)},
                {"ms_per_step_median", f.timing.median_ms},
                {"ms_per_step_p10", f.timing.p10_ms},
                {"ms_per_step_p90", f.timing.p90_ms},
                {"tokens_per_s", f.tokens_per_s},
                {"weight_bytes", f.weight_bytes},
                {"cache_bytes", f.cache_bytes},
                {"gb_per_s", f.gb_per_s},
                {"n_params", static_cast<double>(f.n_params)},
                {"steps", static_cast<double>(f.timing.steps)},
                {"warmup", static_cast<double>(f.timing.warmup)}});
    rows.push_back(row);
  } else {
    const auto figures = bench::bench_kv(cfg, a.batch, a.length);
    // formula + scales == layout == measured (the scales are 0 but for int8 and fp8_e4m3).
    fmt::print("{:<14} {:>8} {:>14} {:>12} {:>14} {:>14}  {}\n", "variant", "kv heads", "formula B/tok", "scales B/tok",
               "layout B/tok", "measured B/tok", "equal");
    for (const auto& f : figures) {
      const int64_t expected = f.formula_bytes + f.scale_bytes;
      const bool equal = static_cast<double>(expected) == f.measured_bytes && expected == f.layout_bytes;
      fmt::print("{:<14} {:>8} {:>14} {:>12} {:>14} {:>14.1f}  {}\n", f.label, f.n_kv_heads, f.formula_bytes,
                 f.scale_bytes, f.layout_bytes, f.measured_bytes, equal ? "yes" : "NO");
      auto row = shape_row(cfg);
      row["attention"] = code_of(kVariants, f.variant);
      row["n_kv_heads"] = static_cast<double>(f.n_kv_heads);
      row.insert({{"batch", static_cast<double>(a.batch)},
                  {"length", static_cast<double>(a.length)},
                  {"formula_bytes_per_token", static_cast<double>(f.formula_bytes)},
                  {"layout_bytes_per_token", static_cast<double>(f.layout_bytes)},
                  {"measured_bytes_per_token", f.measured_bytes}});
      rows.push_back(row);
    }
  }
  bench::write_rows(out, "--out", a.bench, rows,
                    {{"device_name", device},
                     {"torch_version", TORCH_VERSION},
                     {"attnlab_version", ATTNLAB_VERSION},
                     {"attention_codes", codes(kVariants)},
                     {"decode_codes", codes(kDecodes)}});
  fmt::print("wrote {} row(s) to {}:/{}\n", rows.size(), out.string(), a.bench);
  return 0;
}

void add_one(CLI::App& parent, Action& action, const std::string& name, const std::string& help) {
  auto a = std::make_shared<BenchArgs>();
  a->bench = name;
  auto* cmd = parent.add_subcommand(name, help);
  add_config_args(*cmd, a->config);
  cmd->add_option("--preset", a->preset, "A shape of BENCHMARKS.md: b1, b2 (train), b3 (decode), b5 (CPU train)");
  cmd->add_option("--out", a->out, "HDF5 file to append to (default results/bench/<device>.h5)");
  if (name != "kv") {
    cmd->add_option("--steps", a->steps, "Timed steps")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--warmup", a->warmup, "Untimed steps first")->capture_default_str()->check(CLI::NonNegativeNumber);
  }
  if (name == "decode") {
    cmd->add_option("--context", a->context,
                    "Tokens cached before the timed steps (default 1024, or what model.max_seq_len leaves)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--decode", a->decode, "MLA: naive or absorbed")->check(CLI::IsMember({"naive", "absorbed"}));
  }
  if (name != "train")
    cmd->add_option("--batch", a->batch, "Sequences decoded at once")->capture_default_str()->check(CLI::PositiveNumber);
  if (name == "kv")
    cmd->add_option("--length", a->length, "Tokens in the measured cache")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([&action, a] { action = [a] { return run(*a); }; });
}

}  // namespace

void add_bench(CLI::App& app, Action& action) {
  auto* bench = app.add_subcommand("bench", "Benchmarks B1-B5: training and decode speed, KV-cache bytes");
  bench->require_subcommand(1);
  add_one(*bench, action, "train", "Time whole training steps (B1, B2, B5)");
  add_one(*bench, action, "decode", "Time cached one-token decode steps (B3)");
  add_one(*bench, action, "kv", "Cache bytes per token: formula, layout and a real cache, every variant (B4)");
}

}  // namespace attnlab::cli
