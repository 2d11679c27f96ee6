// `attnlab eval RUN_DIR [position.* | attention.cache_dtype overrides] [--context L1,L2,...]
// [--decode naive|absorbed]`: perplexity and bits per byte against context
// length on the validation split, written into the run's run.h5 as
// /eval/context rows keyed by their settings (the cache format among them).
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <variant>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/run_dir.h"
#include "core/error.h"
#include "core/run_lock.h"
#include "core/progress.h"
#include "eval/context.h"
#include "eval/evaluate.h"
#include "eval/recall.h"
#include "model/attention/attention.h"
#include "model/attention/registry.h"
#include "model/cache_format.h"
#include "results/run_log.h"

namespace attnlab::cli {
namespace fs = std::filesystem;
namespace {

struct EvalArgs {
  std::string run_dir;
  std::vector<std::string> overrides;
  std::vector<std::string> context;  // --context values; empty: train.seq_len x 1, 2, 4, 8
  std::string decode;            // empty: full-window chunks through the cache
  int64_t chunk = 0;             // 0: train.seq_len (1 with --decode)
  int64_t tokens = 16384;
  int64_t batch = 8;
  std::string device = "auto";
  bool recall = false;
  std::vector<std::string> depths;  // --depths values; empty: 0, 0.25, 0.5, 0.75, 1
  int64_t trials = 20;
};

// Numeric codes for the string settings a row records (run.h5 series are float64);
// the same tables are written as attributes of /eval/context.
const std::vector<std::string> kScalingKinds{"none", "linear", "ntk", "yarn"};
const std::vector<std::string> kPositionKinds{"none", "learned", "alibi", "rope"};
const std::vector<std::string> kPositionDims{"first", "high", "low", "uniform"};
const std::vector<std::string> kDecodeModes{"full", "naive", "absorbed"};
const std::vector<std::string> kRecallTasks{"passkey-text", "passkey", "mqar"};
const std::vector<std::string> kCacheFormats = model::cache_format_names();

double code_of(const std::vector<std::string>& table, const std::string& name) {
  for (size_t i = 0; i < table.size(); ++i)
    if (table[i] == name) return static_cast<double>(i);
  throw Error("eval: no code for '" + name + "'");
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += fmt::format("{}{}={}", i ? ", " : "", i, names[i]);
  return out;
}

int64_t checkpoint_step(const fs::path& checkpoint) {
  const std::string stem = checkpoint.stem().string();  // step-0000400
  return std::strtoll(stem.substr(stem.find('-') + 1).c_str(), nullptr, 10);
}

// The settings that identify a row: a later row with the same settings replaces it.
std::map<std::string, double> settings_of(const RunConfig& c, const EvalArgs& args, int64_t step, int64_t chunk,
                                          int64_t context) {
  const auto& p = c.model.position;
  return {{"step", static_cast<double>(step)},
          {"context", static_cast<double>(context)},
          {"chunk", static_cast<double>(chunk)},
          {"decode", code_of(kDecodeModes, args.decode.empty() ? "full" : args.decode)},
          {"cache_dtype", code_of(kCacheFormats, c.model.attention.cache_dtype)},
          {"token_budget", static_cast<double>(args.tokens)},
          {"position_kind", code_of(kPositionKinds, p.kind)},
          {"rope_theta", p.theta},
          {"rope_fraction", p.fraction},
          {"rope_dims", code_of(kPositionDims, p.dims)},
          {"scaling_kind", code_of(kScalingKinds, p.scaling.kind)},
          {"scaling_factor", p.scaling.factor},
          {"scaling_original_max_len", static_cast<double>(p.scaling.original_max_len)},
          {"scaling_beta_fast", p.scaling.beta_fast},
          {"scaling_beta_slow", p.scaling.beta_slow},
          {"scaling_mscale", p.scaling.mscale},
          {"scaling_mscale_all_dim", p.scaling.mscale_all_dim}};
}

// Drops the rows of `series` evaluated with exactly these settings: the new
// row replaces them, so the same command twice leaves the same file.
void remove_same_settings(results::RunLog& log, const std::string& series, const std::map<std::string, double>& key) {
  log.remove_rows(series, [&key](const std::map<std::string, double>& row) {
    for (const auto& [k, v] : key) {
      auto it = row.find(k);
      if (it == row.end() || it->second != v) return false;
    }
    return true;
  });
}

// Rows written before eval recorded the cache format were evaluated in the
// run's trained attention.cache_dtype (no override could change it then),
// which /model kv_dtype records ("fp32", "bf16" or "fp16").
void record_cache_dtype_of_old_rows(results::RunLog& log) {
  const auto* kv_dtype = log.attr("/model", "kv_dtype");
  std::string trained = kv_dtype && std::holds_alternative<std::string>(*kv_dtype) ? std::get<std::string>(*kv_dtype)
                                                                                 : "fp32";
  if (std::find(kCacheFormats.begin(), kCacheFormats.end(), trained) == kCacheFormats.end()) trained = "fp32";
  for (const char* series : {"eval/context", "eval/recall"})
    log.add_column(series, "cache_dtype", code_of(kCacheFormats, trained));
}

std::string describe_position(const PositionConfig& p) {
  if (p.kind != "rope") return p.kind;
  std::string s = fmt::format("rope theta {:g}", p.theta);
  if (p.fraction < 1.0) s += fmt::format(" fraction {:g} ({})", p.fraction, p.dims);
  if (p.scaling.kind != "none") s += fmt::format(", {} x{:g}", p.scaling.kind, p.scaling.factor);
  return s;
}

// Recall probes at each length: the run's own synthetic task, or the text
// passkey prompt through the run's tokenizer.
std::vector<eval::RecallCell> run_recall(LoadedRun& loaded, const std::vector<int64_t>& lengths,
                                         const eval::ContextOptions& options, const EvalArgs& args) {
  const auto& data = loaded.config.data;
  const uint64_t seed = 0x7265'6361'6C6CULL;  // "recall": the same trials every time
  std::vector<eval::RecallCell> cells;
  const bool mqar = data.kind == "synthetic" && data.task == "mqar";
  const std::string task = data.kind != "synthetic" ? "passkey-text" : data.task;
  std::vector<double> given_depths;
  for (const auto& d : split_list(args.depths)) given_depths.push_back(std::stod(d));  // checked by number_in
  if (given_depths.empty()) given_depths = {0.0, 0.25, 0.5, 0.75, 1.0};
  const std::vector<double> depths = mqar ? std::vector<double>{-1.0} : given_depths;
  Progress progress("eval recall", static_cast<int64_t>(lengths.size() * depths.size()));
  int64_t done = 0;
  for (int64_t l : lengths) {
    auto spec = data::SyntheticSpec::from(data, l);
    if (mqar && 2 * (spec.num_pairs + spec.num_queries) > l)
      throw_user_error("--context", "", fmt::format("{} tokens cannot hold {} MQAR pairs and {} queries", l,
                                                    spec.num_pairs, spec.num_queries));
    for (double depth : depths) {
      auto make = [&](int64_t trial) {
        const uint64_t s = data::mix_seed(seed, static_cast<uint64_t>(l), static_cast<uint64_t>(trial));
        if (task == "passkey-text") return eval::text_passkey(*loaded.dataset.tokenizer, l, depth, s);
        if (task == "passkey") return data::passkey_example(spec, depth, s);
        return data::mqar_example(spec, s);
      };
      cells.push_back(eval::score_recall(loaded.model, task, l, depth, args.trials, options, make));
      progress.update(++done, fmt::format("context {}", l));
    }
  }
  progress.finish();
  fmt::print("{} recall (accuracy over {} trials; depth -1: none)\n", task, args.trials);
  fmt::print("{:>8} {:>6} {:>9} {:>9}\n", "context", "depth", "exact", "tokens");
  for (const auto& c : cells)
    fmt::print("{:>8} {:>6.2f} {:>9.3f} {:>9.3f}\n", c.context, c.depth, c.accuracy, c.target_accuracy);
  return cells;
}

int run(const EvalArgs& args) {
  const fs::path run_dir = args.run_dir;
  const fs::path run_file = run_dir / "run.h5";
  if (!fs::exists(run_file)) throw_user_error("", run_dir.string(), "not a run directory: it holds no run.h5");
  RunLock lock(run_dir);  // one writer: not beside a training process or another eval
  {
    // Training rewrites run.h5 from memory at every commit: evaluating now
    // would have its rows overwritten by the trainer's next commit.
    auto log = results::RunLog::load(run_file);
    const auto* status = log.attr("/", "status");
    if (status && std::get<std::string>(*status) == "running")
      throw_user_error("", run_file.string(),
                       "the run is still training (status: running); evaluate it once it ends. If it was killed, "
                       "run the same train command again to resume and finish it");
  }
  auto loaded = load_run(run_dir, args.device, /*with_data=*/true, args.overrides);
  const auto& cfg = loaded.config;
  if (!args.decode.empty()) {
    if (model::attention_entry(cfg.model.attention.kind).decode_modes().empty())
      throw_user_error("--decode", "", fmt::format("this run's attention ({}) has one decode path; naive/absorbed "
                                                   "are for variants that cache a compressed form (mla, ...)",
                                                   cfg.model.attention.kind));
    loaded.model->set_decode(model::parse_decode(args.decode));
  }
  const int64_t train_len = cfg.train.seq_len;
  std::vector<int64_t> lengths;
  for (const auto& c : split_list(args.context)) lengths.push_back(std::stoll(c));  // checked by integer_in
  if (lengths.empty())
    for (int64_t m : {1, 2, 4, 8}) lengths.push_back(m * train_len);
  for (int64_t l : lengths)
    if (l < 1) throw_user_error("--context", "", fmt::format("{} is not a positive context length", l));
  if (cfg.model.position.kind == "learned")
    for (int64_t l : lengths)
      if (l > cfg.model.max_seq_len)
        throw_user_error("--context", "",
                         fmt::format("{} exceeds model.max_seq_len ({}): learned positions have no embedding "
                                     "beyond it; use contexts <= {}",
                                     l, cfg.model.max_seq_len, cfg.model.max_seq_len));

  eval::ContextOptions options;
  options.chunk = args.chunk > 0 ? args.chunk : !args.decode.empty() ? 1 : train_len;
  options.tokens = args.tokens;
  options.batch = args.batch;
  options.device = loaded.model->parameters().front().device();
  options.dtype = cfg.train.dtype == "bf16" && options.device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;

  // The UTF-8 bytes the scored targets stand for, as training's bits per byte counts them.
  const auto bytes_of_id = eval::token_byte_table(*loaded.dataset.tokenizer);
  auto bytes_of = [&bytes_of_id](const torch::Tensor& ids) {
    auto c = ids.to(torch::kInt64).contiguous();
    int64_t bytes = 0;
    for (int64_t i = 0; i < c.numel(); ++i) bytes += bytes_of_id[static_cast<size_t>(c.data_ptr<int64_t>()[i])];
    return bytes;
  };

  const int64_t step = checkpoint_step(loaded.checkpoint);
  // A quantized cache is always read (eval::forward_in_chunks): a window no
  // longer than a chunk then runs as one chunk through the cache.
  const auto cache_format = model::parse_cache_format(cfg.model.attention.cache_dtype);
  fmt::print("evaluating {} (step {}) with {} | chunks of {} tokens, {} KV cache {}{}\n", run_dir.string(), step,
             describe_position(cfg.model.position), options.chunk, cache_format.name,
             cache_format.scaled ? "(read by every chunk)" : "(used when a window spans more than one chunk)",
             args.decode.empty() ? "" : fmt::format(", {} decode", args.decode));
  // A synthetic run has no text to score: it is evaluated by its recall task.
  const bool synthetic = cfg.data.kind == "synthetic";
  const std::vector<int64_t> text_lengths = synthetic ? std::vector<int64_t>{} : lengths;
  int64_t total = 0;
  for (int64_t l : text_lengths) total += std::max<int64_t>(1, (args.tokens + l - 1) / l) * l;
  Progress progress("eval context", total);
  int64_t done = 0;
  std::vector<eval::ContextRow> rows;
  for (int64_t l : text_lengths) {
    rows.push_back(eval::evaluate_context(loaded.model, loaded.dataset.val, l, train_len, options, bytes_of,
                                          [&](int64_t n) {
                                            done += n;
                                            progress.update(done, fmt::format("context {}", l));
                                          }));
  }
  if (!synthetic) progress.finish();

  if (!synthetic) fmt::print("{:>8} {:>8} {:>10} {:>10} {:>10} {:>12}\n", "context", "windows", "ppl", "bits/byte",
             fmt::format("ppl@>={}", train_len), "cache bytes");
  for (const auto& r : rows)
    fmt::print("{:>8} {:>8} {:>10.4f} {:>10.4f} {:>10.4f} {:>12}\n", r.context, r.windows, r.ppl, r.bits_per_byte,
               r.tail_ppl, r.cache_bytes);

  std::vector<eval::RecallCell> cells;
  if (args.recall || synthetic) cells = run_recall(loaded, lengths, options, args);

  // Read the file again right before writing: rows from other evaluations
  // stay, rows with these settings are replaced, training curves are untouched.
  auto log = results::RunLog::load(run_file);
  record_cache_dtype_of_old_rows(log);
  for (const auto& r : rows) {
    auto key = settings_of(cfg, args, step, options.chunk, r.context);
    remove_same_settings(log, "eval/context", key);
    auto row = key;
    row["windows"] = static_cast<double>(r.windows);
    row["tokens"] = static_cast<double>(r.tokens);
    row["loss"] = r.loss;
    row["ppl"] = r.ppl;
    row["bits_per_byte"] = r.bits_per_byte;
    row["tail_from"] = static_cast<double>(r.tail_from);
    row["tail_loss"] = r.tail_loss;
    row["tail_ppl"] = r.tail_ppl;
    row["cache_bytes"] = static_cast<double>(r.cache_bytes);
    log.append("eval/context", row);
  }
  for (const auto& c : cells) {
    auto key = settings_of(cfg, args, step, options.chunk, c.context);
    key["task"] = code_of(kRecallTasks, c.task);
    key["depth"] = c.depth;
    key["trials"] = static_cast<double>(c.trials);
    remove_same_settings(log, "eval/recall", key);
    auto row = key;
    row["accuracy"] = c.accuracy;
    row["target_accuracy"] = c.target_accuracy;
    log.append("eval/recall", row);
  }
  if (!cells.empty()) {
    log.set_attr("/eval/recall", "task_codes", join(kRecallTasks));
    log.set_attr("/eval/recall", "scaling_kind_codes", join(kScalingKinds));
    log.set_attr("/eval/recall", "decode_codes", join(kDecodeModes));
    log.set_attr("/eval/recall", "cache_dtype_codes", join(kCacheFormats));
  }
  log.set_attr("/eval/context", "position_kind_codes", join(kPositionKinds));
  log.set_attr("/eval/context", "rope_dims_codes", join(kPositionDims));
  log.set_attr("/eval/context", "scaling_kind_codes", join(kScalingKinds));
  log.set_attr("/eval/context", "decode_codes", join(kDecodeModes));
  log.set_attr("/eval/context", "cache_dtype_codes", join(kCacheFormats));
  log.commit();
  fmt::print("wrote {} rows to {}:/eval/context{}\n", rows.size(), run_file.string(),
             cells.empty() ? "" : fmt::format(" and {} to /eval/recall", cells.size()));
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, Action& action) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a run: perplexity and bits per byte against context length, into its run.h5 (/eval/context)");
  cmd->add_option("run_dir", args->run_dir, "A run directory (results/<name>[/<run id>])")->required();
  cmd->add_option("overrides", args->overrides,
                  "position.* and attention.cache_dtype overrides applied at evaluation only, e.g. "
                  "position.scaling.kind=yarn position.scaling.factor=4, or attention.cache_dtype=int8 (a quantized "
                  "cache is read even when a window fits in one chunk)");
  add_list_option(*cmd, "--context", args->context, "Context lengths, comma-separated (default: train.seq_len x 1,2,4,8)",
                  integer_in(1, int64_t{1} << 24));
  cmd->add_option("--decode", args->decode,
                  "MLA: score through the cached decode path (naive or absorbed), one token at a time unless "
                  "--chunk says otherwise")
      ->check(CLI::IsMember({"naive", "absorbed"}));
  cmd->add_option("--chunk", args->chunk,
                  "Tokens per forward through the KV cache (default: train.seq_len; 1 with --decode)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tokens", args->tokens, "Scored tokens per context length (windows = tokens / length)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch", args->batch, "Windows per forward")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--recall", args->recall,
                "Also run recall probes at each context: passkey retrieval (text runs), or the run's synthetic task "
                "(into /eval/recall)");
  add_list_option(*cmd, "--depths", args->depths, "Passkey depths in [0, 1], comma-separated (default 0,0.25,0.5,0.75,1)",
                  number_in(0.0, 1.0));
  cmd->add_option("--trials", args->trials, "Recall trials per (context, depth) cell")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", args->device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->callback([&action, args] { action = [args] { return run(*args); }; });
}

}  // namespace attnlab::cli
