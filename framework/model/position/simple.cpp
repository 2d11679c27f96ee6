// The position encodings that are not RoPE: none (NoPE), learned absolute
// embeddings added at the input, and ALiBi's linear score bias.
#include "model/position/simple.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace attnlab::model {

LearnedPosition::LearnedPosition(const PositionOptions& options) : max_len_(options.max_seq_len) {
  wpe_ = register_parameter("wpe", torch::randn({options.max_seq_len, options.d_model}) * 0.02);
}

torch::Tensor LearnedPosition::embed(const torch::Tensor& x_BTD, int64_t start) const {
  const int64_t t = x_BTD.size(1);
  if (start + t > max_len_)
    throw UserError(fmt::format("learned positions stop at model.max_seq_len={}, asked for position {}",
                                max_len_, start + t - 1));
  return x_BTD + wpe_.narrow(0, start, t).to(x_BTD.scalar_type());
}

std::vector<double> alibi_slopes(int64_t n_heads) {
  // Press et al.: a geometric sequence from 2^(-8/n); for a head count that is
  // not a power of two, interleave the slopes of the next power of two.
  auto power_of_two = [](int64_t n) {
    std::vector<double> s;
    const double first = std::pow(2.0, -8.0 / static_cast<double>(n));
    for (int64_t i = 0; i < n; ++i) s.push_back(std::pow(first, static_cast<double>(i + 1)));
    return s;
  };
  int64_t p = 1;
  while (p * 2 <= n_heads) p *= 2;
  auto slopes = power_of_two(p);
  if (p < n_heads) {
    auto extra = power_of_two(2 * p);
    for (int64_t i = 0; static_cast<int64_t>(slopes.size()) < n_heads; i += 2) slopes.push_back(extra[static_cast<size_t>(i)]);
  }
  return slopes;
}

torch::Tensor Alibi::score_bias(int64_t n_heads, int64_t start, int64_t t, int64_t s,
                                const torch::TensorOptions& options) const {
  torch::Tensor slopes_H11;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto dtype = options.dtype().toScalarType();
    auto it = std::find_if(slopes_.begin(), slopes_.end(), [&](const Slopes& c) {
      return c.n_heads == n_heads && c.device == options.device() && c.dtype == dtype;
    });
    if (it == slopes_.end()) {
      torch::NoGradGuard constants;
      slopes_.push_back({n_heads, options.device(), dtype,
                         torch::tensor(alibi_slopes(n_heads), torch::TensorOptions().dtype(torch::kFloat64))
                             .to(options.device(), dtype)
                             .view({n_heads, 1, 1})});
      it = std::prev(slopes_.end());
    }
    slopes_H11 = it->slopes_H11;
  }
  auto q_T = torch::arange(start, start + t, options);
  auto k_S = torch::arange(0, s, options);
  // -slope * distance to the key: 0 on the diagonal, more negative further back.
  auto dist_TS = k_S.unsqueeze(0) - q_T.unsqueeze(1);
  return slopes_H11 * dist_TS.unsqueeze(0);
}

}  // namespace attnlab::model
