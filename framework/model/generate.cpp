// Generation and sampling (see generate.h).
#include "model/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "core/error.h"
#include "model/kv_cache.h"

namespace attnlab::model {

torch::Tensor sample_next(const torch::Tensor& logits_BV, const GenerateOptions& options, torch::Generator& generator) {
  if (options.temperature <= 0.0) return logits_BV.argmax(-1);
  // Shifted so the largest logit is 0 before dividing, in fp64: however small
  // the temperature, the best token stays 0 and the rest fall to -inf,
  // never inf - inf (a NaN softmax).
  auto logits = logits_BV.to(torch::kCPU, torch::kFloat64);
  logits = (logits - std::get<0>(logits.max(-1, /*keepdim=*/true))) / options.temperature;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (options.top_k > 0 && options.top_k < logits.size(-1)) {
    auto kth = std::get<0>(logits.topk(options.top_k, -1)).narrow(-1, options.top_k - 1, 1);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (options.top_p < 1.0) {
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);
    auto probs = torch::softmax(sorted, -1);
    // Drop a token when the ones before it already reach top_p; the most
    // likely token always stays.
    auto drop_sorted = (probs.cumsum(-1) - probs) >= options.top_p;
    auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    logits = logits.masked_fill(drop, neg_inf);
  }
  auto probs = torch::softmax(logits, -1);
  return torch::multinomial(probs, 1, false, generator).squeeze(-1).to(logits_BV.device());
}

GenerateResult generate(TransformerLM& model, const torch::Tensor& prompt_BT, const GenerateOptions& options) {
  if (prompt_BT.dim() != 2 || prompt_BT.size(1) < 1)
    throw UserError(fmt::format("generate: the prompt must be [batch, tokens] with at least one token, got {}",
                                fmt::join(prompt_BT.sizes(), "x")));
  torch::NoGradGuard no_grad;
  const int64_t b = prompt_BT.size(0);
  const int64_t max_len = prompt_BT.size(1) + options.max_new_tokens;
  auto cache = options.cache_dtype ? model->make_cache(b, max_len, *options.cache_dtype) : model->make_cache(b, max_len);
  auto generator = at::detail::createCPUGenerator(options.seed);

  GenerateResult result;
  result.cache_bytes = cache.bytes();
  std::vector<torch::Tensor> pieces{prompt_BT};
  auto done_B = torch::zeros({b}, torch::TensorOptions().dtype(torch::kBool).device(prompt_BT.device()));
  auto logits = model->forward(prompt_BT, cache);  // prefill
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    auto next_B = sample_next(logits.select(1, -1), options, generator);
    if (options.stop_token >= 0) {
      next_B = next_B.masked_fill(done_B, options.stop_token);
      done_B = done_B.logical_or(next_B == options.stop_token);
    }
    pieces.push_back(next_B.unsqueeze(1));
    result.n_generated = step + 1;
    if (options.stop_token >= 0 && done_B.all().item<bool>()) break;
    if (step + 1 < options.max_new_tokens) logits = model->forward(next_B.unsqueeze(1), cache);
  }
  result.tokens_BT = torch::cat(pieces, 1);
  return result;
}

}  // namespace attnlab::model
