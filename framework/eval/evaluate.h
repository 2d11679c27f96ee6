// Validation metrics: mean cross-entropy over fixed batches, perplexity, and
// bits per byte (comparable across tokenizers).
#pragma once

#include <torch/types.h>

#include <utility>
#include <vector>

#include "data/dataset.h"
#include "model/transformer.h"

namespace attnlab::eval {

struct EvalResult {
  double loss = 0.0;           // mean cross-entropy per token, nats
  double ppl = 0.0;            // exp(loss)
  double bits_per_byte = 0.0;  // summed loss in bits / UTF-8 bytes of the tokens scored
  double accuracy = 0.0;       // argmax == target, over the scored targets
  int64_t tokens = 0;          // targets scored (targets of -100 are skipped, as in the loss)
  int64_t bytes = 0;           // corpus bytes those targets stand for (Tokenizer::token_bytes)
};

using Batches = std::vector<std::pair<torch::Tensor, torch::Tensor>>;

// The UTF-8 bytes each token id stands for (Tokenizer::token_bytes), as a
// table: bits per byte sums it over the targets it scores.
std::vector<int64_t> token_byte_table(const data::Tokenizer& tokenizer);

// Evaluates in eval mode without gradients (autocast to `dtype` when it is
// bf16/fp16); restores the model's training mode afterwards. Bits per byte
// count the bytes of exactly the targets scored, through `tokenizer`.
EvalResult evaluate(model::TransformerLM& model, const Batches& batches, torch::Device device,
                    torch::ScalarType dtype, const data::Tokenizer& tokenizer);

}  // namespace attnlab::eval
