#include "train/step.h"

#include <torch/nn/functional/loss.h>

#include <limits>

#include "runtime/autocast.h"
#include "train/optimizer.h"

namespace attnlab::train {

StepResult train_step(model::TransformerLM& model, torch::optim::Optimizer& optimizer, const NextBatch& next_batch,
                      const RunConfig& cfg, torch::Device device, torch::ScalarType dtype) {
  const int64_t grad_accum = cfg.train.grad_accum;
  optimizer.zero_grad(true);
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(device));
  for (int64_t micro = 0; micro < grad_accum; ++micro) {
    const torch::Tensor batch_2BT = next_batch().to(device, /*non_blocking=*/true);
    const torch::Tensor inputs_BT = batch_2BT[0], targets_BT = batch_2BT[1];
    torch::Tensor loss;
    {
      AutocastScope autocast(device.type(), dtype);
      auto logits_BTV = model->forward(inputs_BT);
      // Cross-entropy in fp32 under bf16 autocast (fp64 stays fp64).
      const auto loss_dtype = logits_BTV.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
      loss = torch::nn::functional::cross_entropy(logits_BTV.reshape({-1, logits_BTV.size(-1)}).to(loss_dtype),
                                                  targets_BT.reshape({-1}));
    }
    (loss / static_cast<double>(grad_accum)).backward();
    loss_sum += loss.detach();
  }
  const double max_norm = cfg.optim.grad_clip > 0 ? cfg.optim.grad_clip : std::numeric_limits<double>::infinity();
  StepResult out;
  out.grad_norm = clip_grad_norm(model->parameters(), max_norm);
  optimizer.step();
  out.loss = loss_sum / static_cast<double>(grad_accum);
  return out;
}

DivergenceWatch::DivergenceWatch(torch::Device device)
    : step_(torch::full({}, -1, torch::TensorOptions().dtype(torch::kInt64).device(device))),
      loss_(torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device))) {}

void DivergenceWatch::observe(const torch::Tensor& loss, int64_t step) {
  const auto first_time = step_.lt(0).logical_and(loss.isfinite().logical_not());
  step_ = torch::where(first_time, step, step_);
  loss_ = torch::where(first_time, loss.to(torch::kFloat32), loss_);
}

std::optional<DivergenceWatch::Diverged> DivergenceWatch::first() const {
  const int64_t step = step_.item<int64_t>();
  if (step < 0) return std::nullopt;
  return Diverged{step, loss_.item<double>()};
}

}  // namespace attnlab::train
