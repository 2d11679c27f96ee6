// AdamW with two parameter groups: matrices and embeddings decay, while
// vectors (norm gains, biases) do not (as in nanoGPT and most LM recipes).
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <memory>

#include "config/run_config.h"

namespace attnlab::train {

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, const OptimConfig& optim);

// Sets every group's learning rate.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace attnlab::train
