// Autoregressive generation with a caller-owned KV cache: prefill the prompt
// in one forward, then decode one token per step. Greedy, temperature, top-k
// and top-p sampling; stops at a length or at a stop token.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>

#include "model/transformer.h"

namespace attnlab::model {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;   // 0: greedy (argmax)
  int64_t top_k = 0;          // keep the k most likely tokens; 0: all
  double top_p = 1.0;         // keep the smallest set with this much probability; 1: all
  int64_t stop_token = -1;    // a row stops after emitting it; < 0: never
  uint64_t seed = 0;          // sampling generator seed (sampling runs on the CPU)
  std::optional<CacheFormat> cache_dtype;  // default: attention.cache_dtype (fp32 ... int8, fp8_e4m3)
};

struct GenerateResult {
  torch::Tensor tokens_BT;    // prompt followed by the generated tokens (rows that
                              // stopped early are padded with stop_token)
  int64_t n_generated = 0;    // decode steps taken
  int64_t cache_bytes = 0;    // bytes the KV cache allocated
};

// prompt_BT: int64 ids on the model's device. The model's decode mode (MLA
// naive/absorbed) is whatever set_decode last chose.
GenerateResult generate(TransformerLM& model, const torch::Tensor& prompt_BT, const GenerateOptions& options);

// One sampling step: logits_BV -> next ids [B] (on logits' device).
torch::Tensor sample_next(const torch::Tensor& logits_BV, const GenerateOptions& options, torch::Generator& generator);

}  // namespace attnlab::model
