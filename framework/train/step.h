// One optimizer step, as the trainer takes it and `attnlab bench train`
// times it: grad_accum micro-batches through forward (under autocast for
// bf16/fp16) and cross-entropy in fp32, backward, gradient clipping at
// optim.grad_clip, then the optimizer step. The caller sets the learning rate.
//
// Nothing here waits for the device: each micro-batch is one copy of a
// [2, B, T] buffer (pinned on the host when training on CUDA, so the copy is
// asynchronous), and the loss and gradient norm stay device tensors until
// the caller reads them (the trainer, at train.log_every).
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>
#include <optional>

#include "config/run_config.h"
#include "model/transformer.h"

namespace attnlab::train {

// The next micro-batch: inputs and targets stacked as [2, B, T] int64, on any
// device (data::stacked_batch builds one).
using NextBatch = std::function<torch::Tensor()>;

struct StepResult {
  torch::Tensor loss;       // mean over the micro-batches, a 0-d fp32 tensor on the model's device
  torch::Tensor grad_norm;  // before clipping, a 0-d fp32 tensor on the model's device
};

StepResult train_step(model::TransformerLM& model, torch::optim::Optimizer& optimizer, const NextBatch& next_batch,
                      const RunConfig& cfg, torch::Device device, torch::ScalarType dtype);

// The first step whose loss was not finite, kept on the device so that no
// step waits for the check; first() reads it (a sync) at the loop's
// reporting steps.
class DivergenceWatch {
 public:
  explicit DivergenceWatch(torch::Device device);
  void observe(const torch::Tensor& loss, int64_t step);
  struct Diverged {
    int64_t step;
    double loss;
  };
  std::optional<Diverged> first() const;

 private:
  torch::Tensor step_;  // int64, -1 while every loss was finite
  torch::Tensor loss_;  // fp32, the first non-finite loss
};

}  // namespace attnlab::train
