// Position encodings behind one interface. One instance per model is shared by
// every layer: `embed` acts at the embedding (learned), `rotate` inside
// attention on whichever dims the variant hands over (RoPE), `score_bias` adds
// to attention scores (ALiBi), `softmax_scale_factor` corrects the scale (YaRN).
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace attnlab::model {

struct PositionOptions {
  PositionConfig config;
  int64_t d_model = 0;
  int64_t max_seq_len = 0;  // learned table size; YaRN's original context when unset there
};

class Position : public torch::nn::Module {
 public:
  // x_BTD: token embeddings of positions start..start+T-1. Identity unless learned.
  virtual torch::Tensor embed(const torch::Tensor& x_BTD, int64_t start) const { (void)start; return x_BTD; }
  // x_BHTE (any leading dims, tokens at dim -2, rotated dims last): identity unless RoPE.
  virtual torch::Tensor rotate(const torch::Tensor& x_BHTE, int64_t start) const { (void)start; return x_BHTE; }
  // Additive score bias [H, T, S] for queries at start..start+T-1 and keys
  // 0..S-1, or an undefined tensor when the encoding adds none.
  virtual torch::Tensor score_bias(int64_t n_heads, int64_t start, int64_t t, int64_t s,
                                   const torch::TensorOptions& options) const {
    (void)n_heads; (void)start; (void)t; (void)s; (void)options;
    return {};
  }
  // The pairs (i, i + width/2) of a rotated width that rotate, for position.dims
  // high|low|uniform (MHA2MLA); empty for encodings that rotate nothing.
  virtual std::vector<int64_t> rotary_pairs(int64_t width) const { (void)width; return {}; }
  // Multiplier on the softmax scale (YaRN's mscale_all_dim squared), else 1.
  virtual double softmax_scale_factor() const { return 1.0; }
  virtual std::string kind() const = 0;
};

using PositionPtr = std::shared_ptr<Position>;

// The explicit table of position encodings (position/registry.cpp).
PositionPtr make_position(const PositionOptions& options);
std::vector<std::string> position_kinds();

}  // namespace attnlab::model
