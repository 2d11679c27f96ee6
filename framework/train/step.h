// One optimizer step, as the trainer takes it and `attnlab bench train`
// times it: grad_accum micro-batches through forward (under autocast for
// bf16/fp16) and cross-entropy in fp32, backward, gradient clipping at
// optim.grad_clip, then the optimizer step. The caller sets the learning rate.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>
#include <utility>

#include "config/run_config.h"
#include "model/transformer.h"

namespace attnlab::train {

// {inputs_BT, targets_BT}, int64, on any device.
using NextBatch = std::function<std::pair<torch::Tensor, torch::Tensor>()>;

struct StepResult {
  torch::Tensor loss;       // mean over the micro-batches, a 0-d tensor on the model's device
  double grad_norm = 0.0;   // before clipping
};

StepResult train_step(model::TransformerLM& model, torch::optim::Optimizer& optimizer, const NextBatch& next_batch,
                      const RunConfig& cfg, torch::Device device, torch::ScalarType dtype);

}  // namespace attnlab::train
