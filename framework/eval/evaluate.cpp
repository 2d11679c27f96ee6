// Validation loss and perplexity.
#include "eval/evaluate.h"

#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <cmath>
#include <numbers>

#include "runtime/autocast.h"

namespace attnlab::eval {

EvalResult evaluate(model::TransformerLM& model, const Batches& batches, torch::Device device,
                    torch::ScalarType dtype, double bytes_per_token) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  double total_nats = 0.0;
  int64_t total_tokens = 0;
  for (const auto& [inputs_BT, targets_BT] : batches) {
    AutocastScope autocast(device.type(), dtype);
    auto logits_BTV = model->forward(inputs_BT.to(device));
    auto targets = targets_BT.to(device).reshape({-1});
    auto nats = torch::nn::functional::cross_entropy(
        logits_BTV.reshape({-1, logits_BTV.size(-1)}).to(torch::kFloat32), targets,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    total_nats += nats.item<double>();
    total_tokens += targets.numel();
  }
  if (was_training) model->train();
  EvalResult r;
  r.tokens = total_tokens;
  r.loss = total_tokens > 0 ? total_nats / static_cast<double>(total_tokens) : 0.0;
  r.ppl = std::exp(r.loss);
  r.bits_per_byte = r.loss / std::numbers::ln2 / bytes_per_token;
  return r;
}

}  // namespace attnlab::eval
