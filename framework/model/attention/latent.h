// Multi-head latent attention (MLA, DeepSeek-V2): queries optionally through a
// rank-q_rank bottleneck, keys and values through a cached rank-kv_rank latent
// plus one shared rotary key of rope_dim. Two decode paths, switchable at run
// time: naive (cache the up-projected k, v) and absorbed (cache the latent,
// fold W_UK into the query and apply W_UV after attention).
#pragma once

#include <torch/nn/modules/linear.h>

#include "model/attention/attention.h"
#include "model/layers.h"

namespace attnlab::model {

enum class RopeMode { kDecoupled, kNone, kCoupled };

struct LatentOptions {
  int64_t d_model = 0;
  int64_t n_heads = 0;   // H
  int64_t q_rank = 0;    // d_q; 0 = plain query projection
  int64_t kv_rank = 0;   // C = d_c
  int64_t nope_dim = 0;  // d_n
  int64_t rope_dim = 0;  // R = d_r; 0 unless rope_mode is decoupled
  int64_t v_dim = 0;     // F = d_v
  int64_t rope_heads = 1;     // G decoupled rotary keys, each shared by H/G query heads
  int64_t rope_spectrum = 0;  // > rope_dim: the keys' pairs carry frequencies of a head this wide (MHA2MLA)
  bool kv_norm = true;        // RMSNorm on the latent (false: a model converted from MHA)
  RopeMode rope_mode = RopeMode::kDecoupled;
  DecodeMode decode = DecodeMode::kAbsorbed;
  Backend backend = Backend::kAuto;
  bool reads_shared = false;  // model.kv_share: no wkv_a, kv_norm; the latent and rotary key are the group's

  // The config's widths after defaults (config::latent_widths, the one
  // source of MLA's defaults), not validated.
  static LatentOptions widths(const ModelConfig& config);
  // widths(), refusing odd rotary widths (a UserError naming the key).
  static LatentOptions from(const ModelConfig& config);
  int64_t qk_dim() const { return nope_dim + rope_dim; }
  int64_t params() const;  // one layer's parameters
};

class LatentAttention : public Attention {
 public:
  explicit LatentAttention(const LatentOptions& options);

  torch::Tensor forward(const torch::Tensor& x_BTD, AttnContext& ctx) override;
  CacheLayout cache_layout() const override { return layout(options_); }
  void set_decode(DecodeMode mode) override;  // absorbed with coupled RoPE: UserError
  DecodeMode decode() const override { return options_.decode; }
  torch::Tensor output_weight() override { return wo->weight; }

  // naive: k[H, d_n+d_r] + v[H, d_v]; absorbed: ckv[C] + krope[R] (krope[G, R]
  // with G > 1 rotary keys), the
  // state model.kv_share shares, so nothing in a layer that reads it.
  static CacheLayout layout(const LatentOptions& options);
  const LatentOptions& options() const { return options_; }

  torch::nn::Linear wq{nullptr};                      // q_rank == 0: D -> H·(d_n+d_r)
  torch::nn::Linear wq_a{nullptr}, wq_b{nullptr};     // q_rank > 0: D -> d_q -> H·(d_n+d_r)
  Norm q_norm{nullptr};
  torch::nn::Linear wkv_a{nullptr};                   // D -> C + G·R (null when reads_shared)
  Norm kv_norm{nullptr};                              // (null when reads_shared or kv_norm=none)
  torch::nn::Linear wkv_b{nullptr};                   // C -> H·(d_n+d_v), W_UK and W_UV per head
  torch::nn::Linear wo{nullptr};                      // H·d_v -> D

 private:
  torch::Tensor naive(const torch::Tensor& q_nope_BHTN, const torch::Tensor& q_pe_BHTR,
                      const torch::Tensor& ckv_BTC, const torch::Tensor& kpe_BTR, AttnContext& ctx);
  torch::Tensor absorbed(const torch::Tensor& q_nope_BHTN, const torch::Tensor& q_pe_BHTR,
                         const torch::Tensor& ckv_BSC, const torch::Tensor& kpe_BSR, AttnContext& ctx);
  double softmax_scale(const AttnContext& ctx) const;
  // RoPE on rotary dims (tokens at dim -2): on their own, or with
  // rope_spectrum, placed at the pairs position.dims keeps of that width.
  torch::Tensor rotate(const torch::Tensor& x, const AttnContext& ctx) const;

  LatentOptions options_;
};

}  // namespace attnlab::model
