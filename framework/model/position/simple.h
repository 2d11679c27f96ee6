// NoPE, learned absolute positions and ALiBi (see position.h for the interface).
#pragma once

#include "core/error.h"
#include "model/position/position.h"

#include <fmt/format.h>

#include <mutex>
#include <vector>

namespace attnlab::model {

class NoPosition : public Position {
 public:
  std::string kind() const override { return "none"; }
};

// GPT-2 style: a learned [max_seq_len, D] table added to the token embeddings.
class LearnedPosition : public Position {
 public:
  explicit LearnedPosition(const PositionOptions& options);
  torch::Tensor embed(const torch::Tensor& x_BTD, int64_t start) const override;
  std::string kind() const override { return "learned"; }

 private:
  int64_t max_len_;
  torch::Tensor wpe_;
};

class Alibi : public Position {
 public:
  torch::Tensor score_bias(int64_t n_heads, int64_t start, int64_t t, int64_t s,
                           const torch::TensorOptions& options) const override;
  std::string kind() const override { return "alibi"; }

 private:
  // The slopes [H, 1, 1] per (heads, device, dtype), uploaded once rather
  // than per layer and forward.
  struct Slopes {
    int64_t n_heads;
    c10::Device device;
    c10::ScalarType dtype;
    torch::Tensor slopes_H11;
  };
  mutable std::mutex mutex_;
  mutable std::vector<Slopes> slopes_;
};

// ALiBi's per-head slopes (Press et al. 2022), head 0 steepest.
std::vector<double> alibi_slopes(int64_t n_heads);

}  // namespace attnlab::model
