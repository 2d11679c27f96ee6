// Perplexity against context length, window by window, chunk by chunk.
#include "eval/context.h"

#include <fmt/format.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "model/kv_cache.h"
#include "runtime/autocast.h"

namespace attnlab::eval {

std::vector<int64_t> window_starts(int64_t size, int64_t span, int64_t n) {
  if (size < span)
    throw_user_error("--context", "",
                     fmt::format("a window of {} tokens does not fit in the validation split ({} tokens); use a "
                                 "shorter context",
                                 span, size));
  // Evenly spaced, the last window ending at the split's end; windows overlap
  // only when the split is too short to hold n of them side by side.
  std::vector<int64_t> starts;
  const int64_t room = size - span;
  for (int64_t i = 0; i < n; ++i) starts.push_back(n == 1 ? 0 : room * i / (n - 1));
  return starts;
}

int64_t forward_in_chunks(model::TransformerLM& model, const torch::Tensor& inputs_BT, int64_t chunk,
                          const std::function<void(const torch::Tensor&, int64_t, int64_t)>& on_chunk) {
  const int64_t length = inputs_BT.size(1);
  // A plain cache only stores what attention computed anyway; a quantized one
  // rounds it, so skipping it would score a model the user did not ask for.
  const bool quantized = model::parse_cache_format(model->config().attention.cache_dtype).scaled;
  if (!quantized && (chunk <= 0 || chunk >= length)) {
    on_chunk(model->forward(inputs_BT), 0, length);
    return 0;
  }
  if (chunk <= 0 || chunk >= length) chunk = length;
  auto cache = model->make_cache(inputs_BT.size(0), length);
  for (int64_t from = 0; from < length; from += chunk) {
    const int64_t n = std::min(chunk, length - from);
    on_chunk(model->forward(inputs_BT.narrow(1, from, n), cache), from, n);
  }
  return cache.bytes();
}

ContextRow evaluate_context(model::TransformerLM& model, const data::TokenStore& val, int64_t length,
                            int64_t tail_from, const ContextOptions& options,
                            const std::function<int64_t(const torch::Tensor&)>& bytes_of,
                            const std::function<void(int64_t)>& progress) {
  ContextRow row;
  row.context = length;
  row.tail_from = std::clamp<int64_t>(tail_from, 0, length - 1);
  row.windows = std::max<int64_t>(1, (options.tokens + length - 1) / length);
  const auto starts = window_starts(val.size(), length + 1, row.windows);

  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  double nats = 0.0, tail_nats = 0.0;
  int64_t bytes = 0, tail_tokens = 0;
  for (size_t w0 = 0; w0 < starts.size(); w0 += static_cast<size_t>(options.batch)) {
    const size_t w1 = std::min(starts.size(), w0 + static_cast<size_t>(options.batch));
    std::vector<torch::Tensor> windows;
    for (size_t w = w0; w < w1; ++w) windows.push_back(val.slice(starts[w], length + 1));
    auto tokens_BS = torch::stack(windows);
    auto inputs_BT = tokens_BS.narrow(1, 0, length).to(options.device);
    auto targets_BT = tokens_BS.narrow(1, 1, length);
    for (int64_t b = 0; b < targets_BT.size(0); ++b) bytes += bytes_of(targets_BT[b]);
    targets_BT = targets_BT.to(options.device);

    // Per-position losses [B, L], in fp32 whatever the autocast dtype.
    std::vector<torch::Tensor> losses;
    auto score = [&](const torch::Tensor& logits_BCV, int64_t from, int64_t n) {
      auto t = targets_BT.narrow(1, from, n).reshape({-1});
      // At least fp32 (a float64 model stays float64, for the exactness tests).
      auto logits = logits_BCV.scalar_type() == torch::kDouble ? logits_BCV : logits_BCV.to(torch::kFloat32);
      auto l = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), t,
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      losses.push_back(l.view({targets_BT.size(0), n}));
    };
    AutocastScope autocast(options.device.type(), options.dtype);
    row.cache_bytes = forward_in_chunks(model, inputs_BT, options.chunk,
                                        [&](const torch::Tensor& logits_BCV, int64_t from, int64_t n) {
                                          score(logits_BCV, from, n);
                                          if (progress) progress(targets_BT.size(0) * n);
                                        });
    auto loss_BL = torch::cat(losses, 1).to(torch::kFloat64).cpu();
    nats += loss_BL.sum().item<double>();
    auto tail = loss_BL.narrow(1, row.tail_from, length - row.tail_from);
    tail_nats += tail.sum().item<double>();
    tail_tokens += tail.numel();
  }
  if (was_training) model->train();

  row.tokens = row.windows * length;
  row.loss = nats / static_cast<double>(row.tokens);
  row.ppl = std::exp(row.loss);
  row.bits_per_byte = nats / std::numbers::ln2 / static_cast<double>(std::max<int64_t>(1, bytes));
  row.tail_loss = tail_nats / static_cast<double>(tail_tokens);
  row.tail_ppl = std::exp(row.tail_loss);
  return row;
}

}  // namespace attnlab::eval
