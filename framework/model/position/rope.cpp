// RoPE frequencies (theta, partial, scaling) and the rotate-half rotation.
// YaRN follows HF transformers' _compute_yarn_parameters and DeepSeek-V3's
// model.py exactly, in every case of mscale / mscale_all_dim (MLA facts in
// docs/attention.md, "YaRN").
#include "model/position/rope.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "runtime/autocast.h"

namespace attnlab::model {

double yarn_mscale(double factor, double mscale) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

Rope::Rope(const PositionOptions& options)
    : config_(options.config),
      original_len_(options.config.scaling.original_max_len > 0 ? options.config.scaling.original_max_len
                                                                 : options.max_seq_len) {
  const auto& s = config_.scaling;
  if (s.kind != "none" && s.kind != "linear" && s.kind != "ntk" && s.kind != "yarn")
    throw_user_error("position.scaling.kind", "", fmt::format("'{}' is not one of none, linear, ntk, yarn", s.kind));
  if (config_.dims != "first" && config_.dims != "high" && config_.dims != "low" && config_.dims != "uniform")
    throw_user_error("position.dims", "", fmt::format("'{}' is not one of first, high, low, uniform", config_.dims));
  if (s.kind == "yarn") {
    // HF's attention_factor (on cos and sin): mscale / mscale_all_dim when
    // both are non-zero (DeepSeek), else get_mscale(factor) whatever mscale
    // says (Llama, Qwen). The softmax scale carries get_mscale(factor,
    // mscale_all_dim)^2 when mscale_all_dim is non-zero (DeepseekV3Attention).
    rotation_scale_ = s.mscale != 0.0 && s.mscale_all_dim != 0.0
                          ? yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim)
                          : yarn_mscale(s.factor, 1.0);
    if (s.mscale_all_dim != 0.0) {
      const double m = yarn_mscale(s.factor, s.mscale_all_dim);
      softmax_factor_ = m * m;
    }
  }
}

int64_t Rope::rotary_width(int64_t width) const {
  const double w = config_.fraction * static_cast<double>(width);
  const auto rounded = static_cast<int64_t>(std::llround(w));
  if (std::abs(w - static_cast<double>(rounded)) > 1e-9 || rounded % 2 != 0 || rounded < 2)
    throw_user_error("position.fraction", "",
                     fmt::format("{} of a rotated width of {} gives {} rotary dims; RoPE needs an even number of "
                                 "at least 2",
                                 config_.fraction, width, w));
  return rounded;
}

std::vector<double> Rope::inv_freq(int64_t width) const {
  if (width % 2 != 0) throw Error(fmt::format("RoPE needs an even rotated width, got {}", width));
  const bool first = config_.dims == "first";
  const int64_t rotary = rotary_width(width);
  // The spectrum: theta^(-2i/e) over the width e it belongs to.
  const int64_t spectrum_width = first ? rotary : width;
  const int64_t pairs = spectrum_width / 2;
  const auto& s = config_.scaling;
  const double e = static_cast<double>(spectrum_width);
  double theta = config_.theta;
  // NTK-aware: stretch the base so the lowest frequency interpolates by `factor`.
  if (s.kind == "ntk" && spectrum_width > 2) theta *= std::pow(s.factor, e / (e - 2.0));
  std::vector<double> freq(static_cast<size_t>(pairs));
  for (int64_t i = 0; i < pairs; ++i) freq[static_cast<size_t>(i)] = std::pow(theta, -2.0 * static_cast<double>(i) / e);
  if (s.kind == "linear") {
    for (auto& f : freq) f /= s.factor;
  } else if (s.kind == "yarn") {
    // Ramp by wavelength: pairs rotating more than beta_fast times over the
    // original context extrapolate, fewer than beta_slow times interpolate.
    auto correction_dim = [&](double rotations) {
      return e * std::log(static_cast<double>(original_len_) / (rotations * 2.0 * std::numbers::pi)) /
             (2.0 * std::log(config_.theta));
    };
    double low = std::max(std::floor(correction_dim(s.beta_fast)), 0.0);
    double high = std::min(std::ceil(correction_dim(s.beta_slow)), e - 1.0);
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < pairs; ++i) {
      const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
      const double extrapolate = 1.0 - ramp;
      auto& f = freq[static_cast<size_t>(i)];
      f = (f / s.factor) * (1.0 - extrapolate) + f * extrapolate;
    }
  }
  if (first) return freq;
  // MHA2MLA: the pairs rotary_pairs keeps rotate, the others do not.
  std::vector<bool> rotated(static_cast<size_t>(pairs), false);
  for (int64_t i : rotary_pairs(width)) rotated[static_cast<size_t>(i)] = true;
  for (int64_t i = 0; i < pairs; ++i)
    if (!rotated[static_cast<size_t>(i)]) freq[static_cast<size_t>(i)] = 0.0;
  return freq;
}

std::vector<int64_t> Rope::rotary_pairs(int64_t width) const {
  const int64_t keep = rotary_width(width) / 2, pairs = width / 2;
  std::vector<int64_t> out;
  for (int64_t k = 0; k < keep; ++k) {
    if (config_.dims == "first") out.push_back(k);  // the first W dims, pairs (i, i + W/2) of a spectrum of their own
    // MHA2MLA: keep rotary/2 of the width's frequencies (high: the fastest,
    // low: the slowest, uniform: evenly spaced).
    else if (config_.dims == "low") out.push_back(pairs - keep + k);
    else if (config_.dims == "uniform") out.push_back((k * pairs) / keep);
    else out.push_back(k);
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> Rope::table_rows(const TableKey& key, int64_t start, int64_t t) const {
  std::lock_guard<std::mutex> lock(mutex_);
  AutocastOff fp_angles;  // the tables are built in key.dtype, whatever autocast a caller runs under
  torch::NoGradGuard constants;
  auto it = std::find_if(tables_.begin(), tables_.end(), [&](const Table& table) { return table.key == key; });
  if (it == tables_.end() || it->cos_NW.size(0) < start + t) {
    int64_t n = 256;
    while (n < start + t) n *= 2;
    const auto f = inv_freq(key.width);
    std::vector<double> m(f.size());
    for (size_t i = 0; i < f.size(); ++i) m[i] = f[i] != 0.0 ? rotation_scale_ : 1.0;
    const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    const auto freq_P = torch::tensor(f, opts).to(key.device, key.dtype);
    const auto mult_P = torch::tensor(m, opts).to(key.device, key.dtype);
    const auto pos_N = torch::arange(0, n, torch::TensorOptions().dtype(key.dtype).device(key.device));
    const auto angle_NP = torch::outer(pos_N, freq_P);
    Table table{key, (torch::cos(angle_NP) * mult_P).repeat({1, 2}), (torch::sin(angle_NP) * mult_P).repeat({1, 2})};
    if (it == tables_.end()) {
      tables_.push_back(std::move(table));
      it = std::prev(tables_.end());
    } else {
      *it = std::move(table);
    }
  }
  return {it->cos_NW.narrow(0, start, t), it->sin_NW.narrow(0, start, t)};
}

torch::Tensor Rope::rotate(const torch::Tensor& x_BHTE, int64_t start) const {
  const int64_t width = x_BHTE.size(-1);
  const int64_t t = x_BHTE.size(-2);
  // Angles in fp64 for fp64 inputs, else fp32: bf16 angles are wrong by whole
  // radians at a few hundred positions.
  const auto ct = x_BHTE.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto x = x_BHTE.to(ct);
  auto [cos_TW, sin_TW] = table_rows({width, x_BHTE.device(), ct}, start, t);
  // The rotated block: all of x, or its first W dims for dims=first.
  const int64_t rotary = cos_TW.size(-1);
  auto block = rotary == width ? x : x.narrow(-1, 0, rotary);
  auto halves = block.chunk(2, -1);
  auto rotated_half = torch::cat({-halves[1], halves[0]}, -1);
  auto out = block * cos_TW + rotated_half * sin_TW;
  if (rotary != width) out = torch::cat({out, x.narrow(-1, rotary, width - rotary)}, -1);
  return out.to(x_BHTE.scalar_type());
}

}  // namespace attnlab::model
