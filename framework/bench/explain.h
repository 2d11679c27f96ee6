// `attnlab explain mla`: the four questions the framework is built around,
// answered by running one small MLA layer in fp64 and measuring, not by
// quoting formulas (docs/mla.md walks through the output):
//   (1) what MLA caches per token, against MHA's keys and values;
//   (2) that the absorbed query times the latent gives the scores of the
//       decompressed keys, and that the real layer's absorbed decode caches
//       and attends over the latent only;
//   (3) why RoPE is decoupled: folding W_UK through a rotation is exact at the
//       position it was folded for and wrong at every other;
//   (4) what every registered variant caches (the registry's kv table).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/kv_report.h"
#include "config/run_config.h"

namespace attnlab::bench {

struct MlaExplanation {
  // The setup: the composed model's shape and MLA widths, the input, the seed.
  std::string model_summary;             // "2 layers, d_model 128, 4 heads of 32"
  int64_t seed = 0;
  int64_t batch = 0;                     // B
  int64_t tokens = 0;                    // S (= T for the score identities)
  int64_t d_model = 0, n_heads = 0, kv_rank = 0, nope_dim = 0, rope_dim = 0, v_dim = 0, q_rank = 0;

  // (1) Per token per layer, from the registry's layouts, in the config's cache dtype.
  std::string cache_dtype;               // attention.cache_dtype
  std::string mha_parts, naive_parts, absorbed_parts;          // "k[4,32] + v[4,32]", ...
  int64_t mha_elements = 0, naive_elements = 0, absorbed_elements = 0;
  int64_t mha_bytes = 0, naive_bytes = 0, absorbed_bytes = 0;
  int64_t absorbed_formula = 0;          // the registry's paper formula, d_c + d_r
  double mha_over_absorbed = 0.0;        // MHA elements / absorbed MLA elements

  // (2) The absorption identity on explicit tensors, and the real layer's decode.
  std::vector<int64_t> q_nope_shape, w_uk_shape, k_nope_shape, q_tilde_shape, latent_shape, k_pe_shape,
      scores_shape;
  double score_max = 0.0;                // max |scores|, for scale
  double absorbed_score_error = 0.0;     // max |scores_naive - scores_absorbed|
  int64_t prefill_tokens = 0, decode_steps = 0;
  bool decode_ran_absorbed = false;      // every decode step reported InnerPath::kAbsorbed
  std::string absorbed_cache_held;       // "ckv[2,8,64] + krope[2,8,16]": what the layer's cache holds
  std::string naive_cache_held;          // "k[2,8,4,48] + v[2,8,4,32]"
  int64_t absorbed_cache_bytes = 0, naive_cache_bytes = 0;     // allocated (fp64)
  double decode_output_max = 0.0;        // max |decode output|, for scale
  double decode_output_error = 0.0;      // max |out_absorbed - out_naive| over the decode steps

  // (3) Coupled RoPE: W_UK folded once, through the rotation of key position fold_position.
  int64_t fold_position = 0;
  double coupled_score_max = 0.0;        // max |true coupled scores|
  double fold_error_at_fold = 0.0;       // max |fold - coupled| at key position fold_position
  double fold_error_elsewhere = 0.0;     // max |fold - coupled| at every other key position
  std::string coupled_absorbed_refusal;  // the UserError the layer gives for coupled + absorbed

  // (4) Every registered variant at this shape.
  KvTable table;
};

// Builds one MLA layer from `cfg.model` (attention.kind must be mla and
// attention.rope_mode decoupled, position.kind rope: UserErrors naming the key
// otherwise), in fp64 from torch::manual_seed(cfg.seed), and measures.
MlaExplanation explain_mla(const RunConfig& cfg);

std::string format_explanation(const MlaExplanation& e);

}  // namespace attnlab::bench
