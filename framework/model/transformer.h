// The decoder-only transformer LM: token embedding, n_layers pre-norm blocks
// (Norm -> Attention -> Norm -> MLP), final norm, LM head (optionally tied).
// Attention and position encoding come from their registries by config name.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "config/run_config.h"

namespace attnlab::model {

class KvCache;  // model/kv_cache.h

class TransformerLMImpl : public torch::nn::Module {
 public:
  explicit TransformerLMImpl(const ModelConfig& config);

  // tokens_BT: int64 token ids. Returns logits_BTV (float32, or the autocast dtype).
  torch::Tensor forward(const torch::Tensor& tokens_BT);

  // Incremental forward: the T tokens sit at positions cache.length() ..
  // cache.length()+T-1; each layer reads and extends its part of `cache`.
  torch::Tensor forward(const torch::Tensor& tokens_BT, KvCache& cache);

  const ModelConfig& config() const { return config_; }

  // Total trainable parameters, and those inside attention blocks.
  int64_t n_params() const;
  int64_t n_params_attention() const;

 private:
  ModelConfig config_;
  // (members are the model helper's to define)
};
TORCH_MODULE(TransformerLM);

}  // namespace attnlab::model
