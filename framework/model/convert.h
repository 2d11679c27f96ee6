// MHA or GQA to MLA by SVD, as MHA2MLA (Ji et al., 2025) and TransMLA: each
// head keeps the rotary pairs the target's position.dims selects (partial
// RoPE, the source's own frequencies) as a per-head decoupled rotary key; the
// remaining key dims and the values of all kv heads are factorised jointly,
// [W_K,nope; W_V] ~ U_R S_R V_R^T, into W_DKV = S_R^1/2 V_R^T (the cached
// rank-R latent) and the up-projections U_R S_R^1/2 (W_UK, W_UV). At full
// rank with every rotating pair kept the converted model computes the
// source's function exactly; a short fine-tune recovers what a lower rank
// or dropped frequencies cost.
#pragma once

#include <string>
#include <vector>

#include "config/run_config.h"
#include "model/transformer.h"

namespace attnlab::model {

// What `attnlab convert` asks for.
struct MlaConversion {
  int64_t kv_rank = 0;          // R; 0: full rank (min(rows, d_model) of the joint matrix)
  std::string rope_dims;        // high | low | uniform; "": the source's when it is partial, else high
  double rope_fraction = 0.0;   // share of each head's rotary pairs kept; 0: the source's when partial, else 0.25
};

// The largest useful rank: min(K·(2E - W), d_model), the rank bound of the joint matrix.
int64_t full_kv_rank(const ModelConfig& source, int64_t rope_dim);

// The request with its defaults filled in from the source (kv_rank: full
// rank; rope_dims and rope_fraction: the source's partial RoPE, else high at
// 0.25) and checked. UserError naming the --option for a source or request
// that cannot convert.
MlaConversion resolve_conversion(const ModelConfig& source, const MlaConversion& request);

// The overrides that turn the source run's config into its MLA conversion
// (attention.*, position.dims and fraction, model.d_ff fixed to the source's,
// no match_params), for resolve_conversion(source, request).
std::vector<std::string> mla_overrides(const ModelConfig& source, const MlaConversion& request);

struct ConversionReport {
  int64_t kv_rank = 0;
  int64_t full_rank = 0;
  std::vector<double> energy_kept;  // per layer: sum of the R largest S^2 over all S^2
};

// Fills `target` (an MLA model of mla_overrides' shape) from `source` (a
// trained grouped-attention model). Shapes are checked; an Error names the
// first that differs.
ConversionReport convert_to_mla(const TransformerLMImpl& source, TransformerLMImpl& target);

}  // namespace attnlab::model
