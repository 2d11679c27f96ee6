// Recall probes: can the model retrieve what it saw earlier in the context?
//
//   passkey (text runs)       a 5-digit number hidden at a depth in repeated
//                             filler text, asked for at the end (the
//                             landmark-attention / YaRN passkey prompt),
//                             through the run's own tokenizer;
//   passkey, mqar (synthetic) the run's own task (data/synthetic.h) at
//                             other lengths and depths.
//
// A trial is right when every answer token is the model's argmax given the
// tokens before it (teacher forcing; this equals greedy decoding being
// exactly right, since greedy decoding first goes wrong where an argmax does).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/synthetic.h"
#include "eval/context.h"
#include "model/transformer.h"

namespace attnlab::eval {

struct RecallCell {
  std::string task;         // "passkey-text", "passkey", "mqar"
  int64_t context = 0;      // tokens per sequence
  double depth = 0.0;       // needle depth in [0, 1] (passkey); -1 for mqar
  int64_t trials = 0;
  double accuracy = 0.0;    // share of trials with every answer token right
  double target_accuracy = 0.0;  // share of answer tokens right
};

// One text passkey prompt of exactly `length` input tokens (plus targets on
// the answer digits), built with `tokenizer`; UserError naming --context when
// `length` cannot hold the prompt's fixed parts.
std::pair<torch::Tensor, torch::Tensor> text_passkey(const data::Tokenizer& tokenizer, int64_t length, double depth,
                                                     uint64_t seed);

// Scores `trials` sequences from `make(trial)` in batches, chunked through the
// KV cache like evaluate_context.
RecallCell score_recall(model::TransformerLM& model, const std::string& task, int64_t context, double depth,
                        int64_t trials, const ContextOptions& options,
                        const std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t)>& make);

}  // namespace attnlab::eval
