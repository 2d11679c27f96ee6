// Validation loss and perplexity.
#include "eval/evaluate.h"

#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <cmath>
#include <numbers>

#include "runtime/autocast.h"

namespace attnlab::eval {

std::vector<int64_t> token_byte_table(const data::Tokenizer& tokenizer) {
  std::vector<int64_t> bytes(static_cast<size_t>(tokenizer.vocab_size()));
  for (size_t id = 0; id < bytes.size(); ++id) bytes[id] = tokenizer.token_bytes(static_cast<int64_t>(id));
  return bytes;
}

EvalResult evaluate(model::TransformerLM& model, const Batches& batches, torch::Device device,
                    torch::ScalarType dtype, const data::Tokenizer& tokenizer) {
  // Bytes per id once, then a gather per batch.
  const auto bytes_V = torch::tensor(token_byte_table(tokenizer), torch::kInt64);
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  double total_nats = 0.0;
  int64_t total_tokens = 0, total_correct = 0;
  int64_t total_bytes = 0;
  for (const auto& [inputs_BT, targets_BT] : batches) {
    AutocastScope autocast(device.type(), dtype);
    auto logits_BTV = model->forward(inputs_BT.to(device));
    auto targets = targets_BT.to(device).reshape({-1});
    auto nats = torch::nn::functional::cross_entropy(
        logits_BTV.reshape({-1, logits_BTV.size(-1)}).to(torch::kFloat32), targets,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    // Targets of -100 (synthetic tasks: positions that test nothing) are
    // skipped by cross_entropy's ignore_index and by the counts.
    auto scored = targets.ne(-100);
    total_nats += nats.item<double>();
    total_tokens += scored.sum().item<int64_t>();
    total_correct += (logits_BTV.reshape({-1, logits_BTV.size(-1)}).argmax(-1).eq(targets) & scored).sum().item<int64_t>();
    total_bytes += bytes_V.index_select(0, targets.masked_select(scored).to(torch::kCPU)).sum().item<int64_t>();
  }
  if (was_training) model->train();
  EvalResult r;
  r.tokens = total_tokens;
  r.loss = total_tokens > 0 ? total_nats / static_cast<double>(total_tokens) : 0.0;
  r.ppl = std::exp(r.loss);
  r.accuracy = total_tokens > 0 ? static_cast<double>(total_correct) / static_cast<double>(total_tokens) : 0.0;
  r.bytes = total_bytes;
  r.bits_per_byte = total_bytes > 0 ? total_nats / std::numbers::ln2 / static_cast<double>(total_bytes) : 0.0;
  return r;
}

}  // namespace attnlab::eval
