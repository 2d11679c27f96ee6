// MLA's widths after defaults: the one source of its default widths, shared
// by the rules (config/attention/mla.cpp) and the layer (LatentOptions).
#pragma once

#include <cstdint>

#include "config/run_config.h"

namespace attnlab::config {

struct LatentWidths {
  int64_t q_rank = 0;    // d_q; 0 = plain query projection
  int64_t kv_rank = 0;   // C = d_c
  int64_t nope_dim = 0;  // d_n
  int64_t rope_dim = 0;  // R = d_r; 0 unless rope_mode is decoupled
  int64_t v_dim = 0;     // F = d_v
  int64_t rope_heads = 1;     // decoupled rotary keys; query heads share them in equal groups
  int64_t rope_spectrum = 0;  // > rope_dim: the key's pairs carry frequencies of a head this wide (MHA2MLA)
};

// For head dim E (model.head_dim, else d_model / n_heads): kv_rank 2E,
// nope_dim E, rope_dim E/2, v_dim E. DeepSeek-V2 uses d_c = 4E at E = 128; at
// toy widths 4E would equal d_model, so attnlab's default compresses by 2E.
// With rope_mode none or coupled there is no decoupled rotary key and
// rope_dim is 0 (coupled rotates the nope dims of q and k instead).
// Not validated: the rules use it to say what is wrong.
LatentWidths latent_widths(const ModelConfig& config);

}  // namespace attnlab::config
