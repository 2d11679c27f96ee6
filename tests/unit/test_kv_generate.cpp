// Generation with a caller-owned cache: greedy equals the argmax of a
// cache-free forward, sampling filters (top-k, top-p) keep what they promise,
// and generation stops at a length or a stop token.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "model/generate.h"
#include "model/kv_cache.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::tiny_config;

TEST_CASE("greedy generation equals re-running the full forward each step", "[kv][generate]") {
  auto kind = GENERATE(as<std::string>{}, "mha", "mqa", "mla");
  torch::manual_seed(41);
  TransformerLM lm(tiny_config(kind));
  auto prompt = torch::randint(50, {2, 4}, torch::kLong);
  GenerateOptions o;
  o.max_new_tokens = 6;
  auto result = generate(lm, prompt, o);
  CHECK(result.tokens_BT.sizes() == torch::IntArrayRef({2, 10}));
  CHECK(result.n_generated == 6);
  CHECK(result.cache_bytes == lm->make_cache(2, 10).bytes());
  torch::NoGradGuard no_grad;
  auto seq = prompt;
  for (int i = 0; i < 6; ++i) seq = torch::cat({seq, lm->forward(seq).select(1, -1).argmax(-1, true)}, 1);
  CHECK(torch::equal(result.tokens_BT, seq));
}

TEST_CASE("generation stops at the stop token", "[kv][generate]") {
  torch::manual_seed(42);
  TransformerLM lm(tiny_config());
  auto prompt = torch::randint(50, {1, 3}, torch::kLong);
  GenerateOptions o;
  o.max_new_tokens = 8;
  auto free_run = generate(lm, prompt, o);
  o.stop_token = free_run.tokens_BT[0][5].item<int64_t>();  // the third generated token
  auto stopped = generate(lm, prompt, o);
  // It stops at the first occurrence, which is at or before the third token.
  CHECK(stopped.n_generated <= 3);
  CHECK(stopped.tokens_BT[0][-1].item<int64_t>() == o.stop_token);
  CHECK(torch::equal(stopped.tokens_BT, free_run.tokens_BT.narrow(1, 0, stopped.tokens_BT.size(1))));
}

TEST_CASE("sampling: seeds reproduce, top-k and top-p keep only what they promise", "[kv][generate]") {
  auto logits = torch::log(torch::tensor({{0.05, 0.1, 0.25, 0.6}}));
  GenerateOptions o;
  o.temperature = 1.0;
  auto draw = [&](const GenerateOptions& opts, int n) {
    auto gen = at::detail::createCPUGenerator(7);
    std::vector<int64_t> counts(4, 0);
    for (int i = 0; i < n; ++i) counts[size_t(sample_next(logits, opts, gen).item<int64_t>())]++;
    return counts;
  };
  auto all = draw(o, 2000);
  CHECK(all == draw(o, 2000));  // same seed, same draws
  CHECK(all[0] > 0);
  CHECK(all[3] > all[2]);
  auto k2 = o;
  k2.top_k = 2;
  auto c = draw(k2, 500);
  CHECK(c[0] == 0);
  CHECK(c[1] == 0);
  CHECK(c[2] > 0);
  auto p = o;
  p.top_p = 0.5;  // 0.6 alone reaches it
  CHECK(draw(p, 200) == std::vector<int64_t>{0, 0, 0, 200});
  p.top_p = 0.8;  // 0.6 + 0.25
  c = draw(p, 500);
  CHECK(c[0] + c[1] == 0);
  CHECK(c[2] > 0);
  auto greedy = o;
  greedy.temperature = 0.0;
  CHECK(draw(greedy, 10) == std::vector<int64_t>{0, 0, 0, 10});
}

TEST_CASE("a bf16 cache halves the bytes and still decodes close to fp32", "[kv][generate]") {
  torch::manual_seed(43);
  TransformerLM lm(tiny_config("gqa"));
  auto fp32 = lm->make_cache(1, 8, torch::kFloat32);
  auto bf16 = lm->make_cache(1, 8, torch::kBFloat16);
  CHECK(bf16.bytes() * 2 == fp32.bytes());
  auto tokens = torch::randint(50, {1, 8}, torch::kLong);
  torch::NoGradGuard no_grad;
  auto a = lm->forward(tokens, fp32), b = lm->forward(tokens, bf16);
  const double err = test::rel_error(b, a);
  CHECK(err < 2e-2);
  CHECK(err > 0.0);  // the cache dtype really took effect
}
