// AdamW with two parameter groups: matrices and embeddings decay, while
// vectors (norm gains, biases) do not (as in nanoGPT and most LM recipes).
//
// Two implementations of one update, chosen by optim.fused:
//   true   FusedAdamW: ATen's _fused_adamw_ (one kernel per group on CUDA,
//          one vectorised pass per tensor on the CPU), no host sync.
//   false  torch::optim::AdamW: one small op after another per parameter,
//          the reference the fused step is tested against.
// Both keep torch::optim::AdamW's state and archive format, so a checkpoint
// written by one resumes under the other.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "config/run_config.h"

namespace attnlab::train {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  // The kernel reads a float step count per parameter on its device;
  // AdamWParamState's int64 step (what checkpoints keep) counts alongside it
  // on the host. Rebuilt from the int64 counts after load().
  std::unordered_map<const void*, torch::Tensor> device_steps_;
};

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, const OptimConfig& optim);

// Sets every group's learning rate.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Clips the gradients of `params` to a total L2 norm of `max_norm` (inf: no
// clipping) with _foreach_norm / _foreach_mul_, as torch.nn.utils.clip_grad_norm_
// with foreach=True does, and returns the norm before clipping as a 0-d
// tensor on the gradients' device: nothing here waits for the device.
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace attnlab::train
