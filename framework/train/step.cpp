#include "train/step.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>

#include <limits>

#include "runtime/autocast.h"

namespace attnlab::train {

StepResult train_step(model::TransformerLM& model, torch::optim::Optimizer& optimizer, const NextBatch& next_batch,
                      const RunConfig& cfg, torch::Device device, torch::ScalarType dtype) {
  const int64_t grad_accum = cfg.train.grad_accum;
  optimizer.zero_grad(true);
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(device));
  for (int64_t micro = 0; micro < grad_accum; ++micro) {
    auto [inputs_BT, targets_BT] = next_batch();
    torch::Tensor loss;
    {
      AutocastScope autocast(device.type(), dtype);
      auto logits_BTV = model->forward(inputs_BT.to(device));
      loss = torch::nn::functional::cross_entropy(logits_BTV.reshape({-1, logits_BTV.size(-1)}).to(torch::kFloat32),
                                                  targets_BT.to(device).reshape({-1}));
    }
    (loss / static_cast<double>(grad_accum)).backward();
    loss_sum += loss.detach();
  }
  const double max_norm = cfg.optim.grad_clip > 0 ? cfg.optim.grad_clip : std::numeric_limits<double>::infinity();
  StepResult out;
  out.grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), max_norm);
  optimizer.step();
  out.loss = loss_sum / static_cast<double>(grad_accum);
  return out;
}

}  // namespace attnlab::train
