// Grouped-query attention: MHA (n_kv_heads = n_heads), GQA, and MQA
// (n_kv_heads = 1) in one class. Caches the rotated keys and the values.
#pragma once

#include <torch/nn/modules/linear.h>

#include "model/attention/attention.h"

namespace attnlab::model {

struct GroupedOptions {
  int64_t d_model = 0;
  int64_t n_heads = 0;     // H
  int64_t n_kv_heads = 0;  // K, divides H
  int64_t head_dim = 0;    // E
  Backend backend = Backend::kAuto;
  bool reads_shared = false;  // model.kv_share: no wk, wv; k and v come from the group's first layer

  // From the validated config; `kind` picks the default n_kv_heads (mha: H, mqa: 1).
  static GroupedOptions from(const ModelConfig& config);
};

class GroupedAttention : public Attention {
 public:
  explicit GroupedAttention(const GroupedOptions& options);

  torch::Tensor forward(const torch::Tensor& x_BTD, AttnContext& ctx) override;
  CacheLayout cache_layout() const override { return options_.reads_shared ? CacheLayout{} : layout(options_); }
  torch::Tensor output_weight() override { return wo->weight; }

  static CacheLayout layout(const GroupedOptions& options);  // k[K,E] + v[K,E], the state model.kv_share shares
  const GroupedOptions& options() const { return options_; }

  torch::nn::Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr};  // wk, wv: null when reads_shared

 private:
  GroupedOptions options_;
};

}  // namespace attnlab::model
