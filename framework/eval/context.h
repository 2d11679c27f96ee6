// Perplexity against context length: how a model trained at one length does
// at longer ones, with the position encoding it was trained with or another
// one applied only now (RoPE scaling at evaluation time).
//
// Each length L is scored on windows of L+1 validation tokens (inputs and
// targets shifted by one), evenly spaced through the split. A window runs
// through the model in chunks (chunked prefill through a KV cache), so memory
// grows with the cache, not with L squared. With chunk 1 every token goes
// through the cached decode path (MLA: naive or absorbed).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "data/dataset.h"
#include "model/transformer.h"

namespace attnlab::eval {

struct ContextOptions {
  int64_t chunk = 0;             // tokens per forward; 0: the whole window in one forward (no cache,
                                 // unless attention.cache_dtype is quantized: see forward_in_chunks)
  int64_t tokens = 16384;        // scored tokens per length (windows = ceil(tokens / L), at least 1)
  int64_t batch = 8;             // windows per forward
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;  // autocast dtype (fp32: none)
};

struct ContextRow {
  int64_t context = 0;        // L
  int64_t windows = 0;
  int64_t tokens = 0;         // targets scored (windows x L)
  double loss = 0.0;          // mean nats per token over all L positions
  double ppl = 0.0;
  double bits_per_byte = 0.0; // over the bytes of exactly the scored targets
  int64_t tail_from = 0;      // positions >= tail_from form the tail
  double tail_loss = 0.0;     // mean nats per token over the tail positions
  double tail_ppl = 0.0;
  int64_t cache_bytes = 0;    // KV cache allocated per forward batch, scales included (0 without a cache)
};

// Runs inputs_BT through the model `chunk` tokens at a time through a KV cache
// in the model's attention.cache_dtype (chunk <= 0 or >= T: one forward without
// a cache), calling on_chunk(logits_BCV, from, n) for each; returns the cache
// bytes allocated. A quantized cache (int8, fp8_e4m3) changes what attention
// reads, so with one the window always goes through the cache (chunk <= 0 or
// >= T: one chunk of T tokens through it).
int64_t forward_in_chunks(model::TransformerLM& model, const torch::Tensor& inputs_BT, int64_t chunk,
                          const std::function<void(const torch::Tensor&, int64_t, int64_t)>& on_chunk);

// Starts of `n` windows of `span` tokens evenly spaced through a split of
// `size` tokens (UserError naming --context when the split is shorter than a window).
std::vector<int64_t> window_starts(int64_t size, int64_t span, int64_t n);

// Scores one length. `bytes_of` maps a [N] int64 tensor of token ids to their
// UTF-8 byte count (the tokenizer's), for bits per byte. `tail_from` sets
// which positions form the tail (typically the training length: positions
// the model never saw in training). `progress(done_tokens)` is called after
// every forward.
ContextRow evaluate_context(model::TransformerLM& model, const data::TokenStore& val, int64_t length,
                            int64_t tail_from, const ContextOptions& options,
                            const std::function<int64_t(const torch::Tensor&)>& bytes_of,
                            const std::function<void(int64_t)>& progress = {});

}  // namespace attnlab::eval
