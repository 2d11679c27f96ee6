#include "bench/bench.h"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "data/dataset.h"
#include "model/attention/attention.h"
#include "model/attention/registry.h"
#include "model/transformer.h"
#include "results/run_log.h"
#include "runtime/autocast.h"
#include "runtime/device.h"
#include "train/mfu.h"
#include "train/model_info.h"
#include "train/optimizer.h"
#include "train/step.h"
#include "train/trainer.h"

namespace attnlab::bench {
namespace {

constexpr int64_t kVocab = 256;  // byte-level, as every benchmark model
constexpr int64_t kBatchPool = 4;  // distinct random batches, cycled

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

// Median and the 10th/90th percentiles (nearest rank) of `ms`.
Timing summarize(std::vector<double> ms, int64_t warmup) {
  Timing t;
  t.steps = static_cast<int64_t>(ms.size());
  t.warmup = warmup;
  if (ms.empty()) return t;
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) { return ms[static_cast<size_t>(q * static_cast<double>(ms.size() - 1) + 0.5)]; };
  t.median_ms = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  t.p10_ms = at(0.1);
  t.p90_ms = at(0.9);
  return t;
}

// Times `step` warmup + steps times; returns the timed steps' milliseconds.
template <class F>
std::vector<double> time_steps(const torch::Device& device, int64_t steps, int64_t warmup, F&& step) {
  std::vector<double> ms;
  for (int64_t i = 0; i < warmup + steps; ++i) {
    synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    step(i);
    synchronize(device);
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) ms.push_back(elapsed);
  }
  return ms;
}

void apply_threads(const TrainConfig& tc) {
  if (tc.threads > 0) torch::set_num_threads(static_cast<int>(tc.threads));
}

}  // namespace

std::vector<std::string> preset_overrides(const std::string& preset) {
  // The shapes of ../shared/reference/BENCHMARKS.md.
  if (preset == "b1")  // nanoGPT shakespeare_char: overhead-bound training
    return {"model.n_layers=6", "model.n_heads=6", "model.d_model=384", "model.max_seq_len=256", "train.seq_len=256",
            "train.batch_size=64", "train.device=cuda", "train.dtype=bf16"};
  if (preset == "b2")  // GPT-2 124M shape: compute-bound training
    return {"model.n_layers=12", "model.n_heads=12", "model.d_model=768", "model.max_seq_len=1024",
            "train.seq_len=1024", "train.batch_size=8", "train.device=cuda", "train.dtype=bf16"};
  if (preset == "b3")  // memory-bound decode
    return {"model.n_layers=12", "model.n_heads=12", "model.d_model=768", "model.max_seq_len=16384",
            "train.device=cuda", "train.dtype=bf16", "attention.cache_dtype=bf16"};
  if (preset == "b5")  // nanoGPT's CPU recipe
    return {"model.n_layers=4", "model.n_heads=4", "model.d_model=128", "model.max_seq_len=64", "train.seq_len=64",
            "train.batch_size=12", "train.device=cpu", "train.dtype=fp32", "train.threads=2"};
  throw_user_error("--preset", "", fmt::format("'{}': expected b1, b2, b3 or b5 (B4 is `attnlab bench kv`)", preset));
}

TrainFigures bench_train(const RunConfig& cfg, int64_t steps, int64_t warmup) {
  const TrainConfig& tc = cfg.train;
  const torch::Device device = select_device(tc.device);
  const torch::ScalarType dtype = parse_dtype(tc.dtype, "train.dtype");
  apply_threads(tc);
  model::TransformerLM model = train::init_model(cfg, kVocab);
  model->to(device);
  model->train();
  auto optimizer = train::make_adamw(*model, cfg.optim);
  train::set_learning_rate(*optimizer, cfg.optim.lr);

  // Batches as the trainer moves them: [2, B, T] (inputs, targets), pinned
  // on the host for a GPU, so a timed step includes its one asynchronous copy.
  std::vector<torch::Tensor> pool;
  for (int64_t i = 0; i < kBatchPool; ++i) {
    const auto w_BT1 = torch::randint(1, kVocab, {tc.batch_size, tc.seq_len + 1}, torch::dtype(torch::kInt64));
    pool.push_back(data::stacked_batch({w_BT1.narrow(1, 0, tc.seq_len), w_BT1.narrow(1, 1, tc.seq_len)},
                                       device.is_cuda()));
  }
  int64_t next = 0;
  const train::NextBatch batch = [&] { return pool[static_cast<size_t>(next++ % kBatchPool)]; };
  const auto ms = time_steps(device, steps, warmup,
                             [&](int64_t) { train::train_step(model, *optimizer, batch, cfg, device, dtype); });

  TrainFigures f;
  f.timing = summarize(ms, warmup);
  f.n_params = model->n_params();
  const double tokens = static_cast<double>(tc.batch_size * tc.seq_len * tc.grad_accum);
  f.tokens_per_s = f.timing.median_ms > 0 ? tokens / (f.timing.median_ms / 1000.0) : 0.0;
  f.flops_per_token = train::model_flops_per_token(*model, tc.seq_len);
  if (const auto peak = train::peak_tflops(device_description(device), dtype, tc.peak_tflops))
    f.mfu = f.tokens_per_s * f.flops_per_token / (*peak * 1e12);
  f.attention_kernel = train::attention_kernel(cfg, device, dtype);
  return f;
}

DecodeFigures bench_decode(const RunConfig& cfg, int64_t context, int64_t batch, const std::string& decode,
                           int64_t steps, int64_t warmup) {
  const TrainConfig& tc = cfg.train;
  const torch::Device device = select_device(tc.device);
  const torch::ScalarType dtype = parse_dtype(tc.dtype, "train.dtype");
  if (context + warmup + steps > cfg.model.max_seq_len)
    throw_user_error("--context", "",
                     fmt::format("{} + {} warm-up + {} timed tokens exceed model.max_seq_len {}", context, warmup,
                                 steps, cfg.model.max_seq_len));
  apply_threads(tc);
  model::TransformerLM model = train::init_model(cfg, kVocab);
  model->to(device);
  model->eval();
  if (!decode.empty()) model->set_decode(model::parse_decode(decode));
  torch::NoGradGuard no_grad;
  auto cache = model->make_cache(batch, context + warmup + steps);
  {
    AutocastScope autocast(device.type(), dtype);
    // Chunks keep the prefill's fp32 scores [B, H, chunk, S] near 1 GiB (B3 at
    // S = 16k, B = 64 would need 51 GB in chunks of 1024).
    const int64_t score_row_bytes = batch * cfg.model.n_heads * context * 4;
    const int64_t chunk = std::clamp<int64_t>((int64_t{1} << 30) / score_row_bytes, 1, 1024);
    for (int64_t at = 0; at < context; at += chunk) {
      const int64_t n = std::min(chunk, context - at);
      model->forward(torch::randint(1, kVocab, {batch, n}, torch::dtype(torch::kInt64)).to(device), cache);
    }
  }
  const auto tokens = torch::randint(1, kVocab, {warmup + steps, batch, 1}, torch::dtype(torch::kInt64)).to(device);
  const auto ms = time_steps(device, steps, warmup, [&](int64_t i) {
    AutocastScope autocast(device.type(), dtype);
    model->forward(tokens[i], cache);
  });

  DecodeFigures f;
  f.timing = summarize(ms, warmup);
  f.n_params = model->n_params();
  for (const auto& p : model->parameters()) f.weight_bytes += static_cast<double>(p.numel() * p.element_size());
  // Timed step i reads the cache at length context + warmup + i (before its own token).
  const double mean_length = static_cast<double>(context + warmup) + 0.5 * static_cast<double>(steps - 1);
  f.cache_bytes = static_cast<double>(model->kv_bytes_per_token()) * mean_length * static_cast<double>(batch);
  f.tokens_per_s = f.timing.median_ms > 0 ? static_cast<double>(batch) / (f.timing.median_ms / 1000.0) : 0.0;
  f.gb_per_s = f.timing.median_ms > 0 ? (f.weight_bytes + f.cache_bytes) / (f.timing.median_ms / 1000.0) / 1e9 : 0.0;
  return f;
}

std::vector<KvFigures> bench_kv(const RunConfig& cfg, int64_t batch, int64_t length) {
  const torch::Device device = select_device(cfg.train.device);
  // The config's own variant first, then every other as `attnlab kv` shows
  // it at this shape (its last row: gqa at its usual K, mla absorbed).
  std::vector<model::VariantConfig> variants{{cfg.model.attention.kind, cfg.model}};
  for (const auto& entry : model::attention_registry())
    if (entry.kind != cfg.model.attention.kind) variants.push_back(entry.kv_rows(cfg.model).back());
  std::vector<KvFigures> out;
  for (const auto& [label, config] : variants) {
    ModelConfig m = config;
    m.vocab_size = kVocab;
    const auto& entry = model::attention_entry(m.attention.kind);
    model::TransformerLM model(m);
    model->to(device);
    model->eval();
    torch::NoGradGuard no_grad;
    auto cache = model->make_cache(batch, length);
    model->forward(torch::randint(1, kVocab, {batch, length}, torch::dtype(torch::kInt64)).to(device), cache);
    KvFigures f;
    f.variant = m.attention.kind;
    f.label = label;
    const auto format = model::parse_cache_format(m.attention.cache_dtype);
    if (entry.declares("n_kv_heads")) f.n_kv_heads = m.attention.integer("n_kv_heads");
    // The paper formulas count elements; a quantized cache's scales (one per
    // vector of each layer's layout) are counted beside them.
    f.formula_bytes = entry.cache_elements(m) * m.n_layers * format.storage_bytes();
    for (const auto& l : model->cache_layouts()) f.scale_bytes += l.scale_bytes_per_token(format);
    f.layout_bytes = model->kv_bytes_per_token();
    // The cache's tensors, allocated for exactly `length` tokens and filled by the prefill.
    f.measured_bytes = static_cast<double>(cache.bytes()) / static_cast<double>(batch * cache.length());
    out.push_back(f);
  }
  return out;
}

void write_rows(const std::filesystem::path& file, const std::string& key, const std::string& name,
                const std::vector<std::map<std::string, double>>& rows,
                const std::map<std::string, std::string>& attributes) {
  std::filesystem::create_directories(file.parent_path().empty() ? "." : file.parent_path());
  results::RunLog log = std::filesystem::exists(file) ? results::RunLog::load(file) : results::RunLog(file);
  if (const auto* was = log.attr("/", "device_name"); was && attributes.contains("device_name")) {
    const auto* text = std::get_if<std::string>(was);
    if (text && *text != attributes.at("device_name"))
      throw_user_error(key, file.string(),
                       fmt::format("holds figures measured on {}, not on {}: write this device's to another file",
                                   *text, attributes.at("device_name")));
  }
  for (const auto& [k, v] : attributes) log.set_attr("/", k, v);
  for (const auto& row : rows) log.append(name, row);
  log.commit();
}

}  // namespace attnlab::bench
