// Rotary position embedding with the rotate-half pair layout (dim i pairs with
// i + E/2) for queries and keys alike, partial RoPE (fraction, dims) and
// context-extension scaling (linear, NTK, YaRN with both of its corrections).
#pragma once

#include <map>
#include <mutex>

#include "model/position/position.h"

namespace attnlab::model {

class Rope : public Position {
 public:
  explicit Rope(const PositionOptions& options);

  torch::Tensor rotate(const torch::Tensor& x_BHTE, int64_t start) const override;
  double softmax_scale_factor() const override { return softmax_factor_; }
  std::string kind() const override { return "rope"; }

  // Angular frequency per pair i (dims i and i+E/2) for a rotated width E;
  // 0 for pairs that partial RoPE leaves alone.
  std::vector<double> inv_freq(int64_t width) const;
  // Factor on cos and sin (YaRN's attention temperature where mscale_all_dim
  // does not move it into the softmax scale), else 1.
  double rotation_scale() const { return rotation_scale_; }

 private:
  PositionConfig config_;
  int64_t original_len_;
  double rotation_scale_ = 1.0;
  double softmax_factor_ = 1.0;
  // inv_freq per width, materialized once per (width, device, dtype).
  mutable std::mutex mutex_;
  mutable std::map<std::string, torch::Tensor> freq_cache_;
};

// YaRN's temperature term: 0.1 * mscale * ln(factor) + 1 for factor > 1, else 1.
double yarn_mscale(double factor, double mscale);

}  // namespace attnlab::model
