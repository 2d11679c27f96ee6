// Rotary position embedding with the rotate-half pair layout for queries and
// keys alike, partial RoPE (fraction, dims) and context-extension scaling
// (linear, NTK, YaRN with both of its corrections).
//
// Partial RoPE comes in two conventions (position.dims):
//   first             GPT-NeoX rotary_pct, litgpt rotary_percentage, HF
//                     partial_rotary_factor: the first W = fraction * width
//                     dims rotate (dim i pairs with i + W/2) with a spectrum of
//                     their own, theta^(-2i/W); the rest pass through.
//   high|low|uniform  MHA2MLA: keep W/2 of the full width's frequencies
//                     theta^(-2i/width) (the fastest, the slowest, or evenly
//                     spaced; dim i pairs with i + width/2), the others do not
//                     rotate. This keeps a trained model's own frequencies.
// YaRN's correction range is computed over the width whose spectrum the
// frequencies come from: W for `first`, the full width for the MHA2MLA modes.
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

  // The dims that rotate out of a rotated width (W above); W == width when
  // fraction is 1. UserError naming position.fraction when W is not an even
  // number of at least 2.
  int64_t rotary_width(int64_t width) const;
  // Angular frequency per rotary pair for a rotated width: W/2 entries for
  // dims=first (pair i: dims i, i + W/2), width/2 entries for the MHA2MLA
  // modes (pair i: dims i, i + width/2; 0 for pairs that do not rotate).
  std::vector<double> inv_freq(int64_t width) const;
  // The MHA2MLA modes: which of a width's pairs (i, i + width/2) rotate, in
  // increasing order (pair i has frequency theta^(-2i/width)).
  std::vector<int64_t> rotary_pairs(int64_t width) const override;
  // Factor on cos and sin (YaRN's attention temperature as HF computes it), else 1.
  double rotation_scale() const { return rotation_scale_; }

 private:
  PositionConfig config_;
  int64_t original_len_;
  double rotation_scale_ = 1.0;
  double softmax_factor_ = 1.0;
  // The cos and sin tables [N, W] (with rotation_scale_ applied) for
  // positions 0..N-1, per (width, device, dtype), grown to the next power of
  // two when a longer position is asked for. A forward slices rows from them
  // instead of computing arange, outer, cos and sin again.
  struct TableKey {
    int64_t width;
    c10::Device device;
    c10::ScalarType dtype;
    bool operator==(const TableKey&) const = default;
  };
  struct Table {
    TableKey key;
    torch::Tensor cos_NW, sin_NW;
  };
  mutable std::mutex mutex_;
  mutable std::vector<Table> tables_;
  // Rows start..start+t-1 of the tables for `key`, building or growing them.
  std::pair<torch::Tensor, torch::Tensor> table_rows(const TableKey& key, int64_t start, int64_t t) const;
};

// YaRN's temperature term get_mscale: 0.1 * mscale * ln(factor) + 1 for factor > 1, else 1.
double yarn_mscale(double factor, double mscale);

}  // namespace attnlab::model
