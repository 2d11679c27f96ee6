// Bits per byte divide the summed loss in bits by the UTF-8 bytes of exactly
// the target tokens scored, not by a split-wide average bytes per token.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <numbers>

#include "data/tokenizer.h"
#include "eval/evaluate.h"
#include "model/transformer.h"
#include "tensor_match.h"

using namespace attnlab;

TEST_CASE("bits per byte count the bytes of the targets scored, with multi-byte characters", "[eval]") {
  // Characters of 1, 2, 3 and 4 UTF-8 bytes. The first half of the text is
  // ASCII, the second half 4-byte characters: a split-wide average would be
  // wrong for windows taken from either half.
  const std::vector<std::string> chars = {"a", "b", "\xC3\xA9" /* é */, "\xE2\x82\xAC" /* € */,
                                          "\xF0\x9D\x84\x9E" /* 𝄞 */, "\xF0\x9F\x98\x80" /* 😀 */};
  std::vector<size_t> seq;  // index into chars per position
  for (int i = 0; i < 40; ++i) seq.push_back(i % 2);
  for (int i = 0; i < 40; ++i) seq.push_back(2 + i % 4);
  std::string text;
  for (size_t c : seq) text += chars[c];
  auto tok = data::CharTokenizer::train(text);
  auto ids = tok.encode(text);
  REQUIRE(ids.size() == seq.size());

  auto config = test::tiny_config("mha");
  config.vocab_size = tok.vocab_size();
  torch::manual_seed(3);
  model::TransformerLM lm(config);

  // Two windows of 8 targets, both in the multi-byte half (3.25 bytes per
  // target against 2.125 over the whole text).
  const int64_t T = 8;
  const std::vector<int64_t> starts = {44, 60};
  auto all = torch::tensor(ids, torch::kInt64);
  std::vector<torch::Tensor> in, tg;
  int64_t expected_bytes = 0;
  for (int64_t s : starts) {
    in.push_back(all.narrow(0, s, T));
    tg.push_back(all.narrow(0, s + 1, T));
    for (int64_t p = s + 1; p <= s + T; ++p) expected_bytes += static_cast<int64_t>(chars[seq[static_cast<size_t>(p)]].size());
  }
  eval::Batches batches = {{torch::stack(in), torch::stack(tg)}};

  // The summed loss in nats, computed here from the logits.
  torch::NoGradGuard no_grad;
  lm->eval();
  auto logits = lm->forward(batches[0].first);
  auto logp = torch::log_softmax(logits.to(torch::kFloat64), -1);
  double nats = -logp.gather(-1, batches[0].second.unsqueeze(-1)).sum().item<double>();

  auto r = eval::evaluate(lm, batches, torch::kCPU, torch::kFloat32, tok);
  CHECK(r.tokens == 2 * T);
  CHECK(r.bytes == expected_bytes);
  CHECK(r.bits_per_byte == Approx(nats / std::numbers::ln2 / static_cast<double>(expected_bytes)).epsilon(1e-5));
  // And the split-wide average would have given another number.
  const double avg_bytes_per_token = static_cast<double>(text.size()) / static_cast<double>(ids.size());
  CHECK(std::abs(r.bits_per_byte - nats / std::numbers::ln2 / (avg_bytes_per_token * 2 * T)) > 0.05 * r.bits_per_byte);
}

TEST_CASE("the char tokenizer's token bytes are UTF-8 lengths, and <unk> counts one byte", "[eval][data]") {
  auto tok = data::CharTokenizer::train("a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E");
  auto ids = tok.encode("a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E" "z");
  REQUIRE(ids.size() == 5);
  CHECK(tok.token_bytes(ids[0]) == 1);
  CHECK(tok.token_bytes(ids[1]) == 2);
  CHECK(tok.token_bytes(ids[2]) == 3);
  CHECK(tok.token_bytes(ids[3]) == 4);
  CHECK(ids[4] == 0);
  CHECK(tok.token_bytes(ids[4]) == 1);
}
