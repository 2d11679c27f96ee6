// Synthetic recall tasks (data=synthetic): sequences generated on the fly,
// with targets only where recall is tested (every other target is
// kIgnoreIndex, which the loss and the accuracy skip).
//
// mqar     Multi-query associative recall, as Zoology's `multiquery_ar`
//          (Arora et al., 2023): num_pairs key-value pairs (keys from
//          [1, V/2), values from [V/2, V), all distinct), then a query region
//          where num_queries of the keys appear again at even offsets drawn
//          from a power law p(g) ~ (g+1)^(power_a - 1); the target at a query
//          key is its value. Every other position holds a uniform random token
//          (Zoology's random_non_queries=True).
// passkey  A passkey of `passkey_digits` digit tokens hidden at a depth in
//          random filler: [..filler.., KEY, d1..dk, ..filler.., QUERY, d1..dk].
//          The targets are the k digits after QUERY. Tokens: digits 0..9,
//          KEY 10, QUERY 11, filler from [12, V).
//
// Batches are a function of (seed, draw index), so a resumed run continues the
// same stream; validation uses a stream of its own.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "config/run_config.h"
#include "data/dataset.h"
#include "data/synthetic_tokens.h"

namespace attnlab::data {

inline constexpr int64_t kIgnoreIndex = -100;  // LibTorch's cross_entropy default

struct SyntheticSpec {
  std::string task = "mqar";  // mqar | passkey
  int64_t vocab_size = 64;
  int64_t seq_len = 64;       // inputs per sequence
  int64_t num_pairs = 8;
  int64_t num_queries = 8;
  double power_a = 0.01;
  int64_t passkey_digits = 5;

  static SyntheticSpec from(const DataConfig& data, int64_t seq_len);
};

// One MQAR sequence: inputs [seq_len] and targets [seq_len] (kIgnoreIndex but
// at the query keys, where the target is the key's value).
std::pair<torch::Tensor, torch::Tensor> mqar_example(const SyntheticSpec& spec, uint64_t seed);

// One passkey sequence with the marker at `depth` in [0, 1] of the filler
// (0: first, 1: right before the query); targets only on the answer digits.
std::pair<torch::Tensor, torch::Tensor> passkey_example(const SyntheticSpec& spec, double depth, uint64_t seed);

// A batch [B, seq_len] of the spec's task; passkey depths are uniform in [0, 1].
std::pair<torch::Tensor, torch::Tensor> synthetic_batch(const SyntheticSpec& spec, int64_t batch, uint64_t seed);

// Streams of batches: batch i of a stream is synthetic_batch(spec, B, mix(seed, stream, i)).
class SyntheticBatcher {
 public:
  SyntheticBatcher(SyntheticSpec spec, int64_t batch_size, uint64_t seed, uint64_t stream = 0);
  std::pair<torch::Tensor, torch::Tensor> next();
  uint64_t state() const { return draws_; }
  void set_state(uint64_t draws) { draws_ = draws; }

 private:
  SyntheticSpec spec_;
  int64_t batch_size_;
  uint64_t seed_, stream_;
  uint64_t draws_ = 0;
};

// The fixed validation batches of a synthetic run (a stream the training never draws).
std::vector<std::pair<torch::Tensor, torch::Tensor>> synthetic_validation(const SyntheticSpec& spec,
                                                                          int64_t n_batches, int64_t batch_size,
                                                                          uint64_t seed);

// Token ids rendered as space-separated numbers (synthetic runs have no text).
class SyntheticTokenizer : public Tokenizer {
 public:
  explicit SyntheticTokenizer(int64_t vocab_size) : vocab_size_(vocab_size) {}
  std::string name() const override { return "synthetic"; }
  int64_t vocab_size() const override { return vocab_size_; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;

 private:
  int64_t vocab_size_;
};

// 64-bit mixing of a seed with indices (SplitMix64), for independent streams.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

}  // namespace attnlab::data
