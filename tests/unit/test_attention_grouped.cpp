// Grouped-query attention: GQA with K = H is MHA and with K = 1 is MQA on the
// same weights; K kv heads equal MHA whose k/v weights repeat per group.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "model/attention/grouped.h"
#include "model/attention/registry.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::tiny_config;

namespace {
void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(src[p.key()]);
}
torch::Tensor run(Attention& a, const torch::Tensor& x, const Position& pos) {
  AttnContext ctx{0, &pos};
  return a.forward(x, ctx);
}
}  // namespace

TEST_CASE("GQA with n_kv_heads = n_heads is MHA, and with 1 is MQA", "[attention]") {
  auto [other, k] = GENERATE(table<std::string, int64_t>({{"mha", 4}, {"mqa", 1}}));
  auto gqa_config = tiny_config("gqa");
  gqa_config.attention.n_kv_heads = k;
  torch::manual_seed(21);
  auto gqa = make_attention(gqa_config);
  auto ref = make_attention(tiny_config(other));
  copy_weights(*gqa, *ref);
  auto pos = make_position({gqa_config.position, 32, 64});
  auto x = torch::randn({2, 7, 32}, torch::kFloat64);
  gqa->to(torch::kFloat64);
  ref->to(torch::kFloat64);
  CHECK(torch::equal(run(*gqa, x, *pos), run(*ref, x, *pos)));
  CHECK(gqa->cache_layout() == ref->cache_layout());
}

TEST_CASE("GQA equals MHA whose k/v weights repeat for each head of a group", "[attention]") {
  torch::manual_seed(22);
  GroupedAttention gqa(GroupedOptions{32, 4, 2, 8});
  GroupedAttention mha(GroupedOptions{32, 4, 4, 8});
  {
    torch::NoGradGuard no_grad;
    mha.wq->weight.copy_(gqa.wq->weight);
    mha.wo->weight.copy_(gqa.wo->weight);
    // kv head g serves query heads 2g and 2g+1.
    mha.wk->weight.copy_(gqa.wk->weight.view({2, 8, 32}).repeat_interleave(2, 0).reshape({32, 32}));
    mha.wv->weight.copy_(gqa.wv->weight.view({2, 8, 32}).repeat_interleave(2, 0).reshape({32, 32}));
  }
  auto pos = make_position({PositionConfig{}, 32, 64});
  auto x = torch::randn({2, 6, 32});
  for (auto backend : {Backend::kMath, Backend::kSdpa}) {
    AttnContext a{0, pos.get()}, b{0, pos.get()};
    a.backend = b.backend = backend;
    CHECK_THAT(gqa.forward(x, a), AllClose(mha.forward(x, b), 1e-6));
  }
}

TEST_CASE("grouped options refuse impossible head counts, naming the key", "[attention]") {
  auto c = tiny_config("gqa");
  c.attention.n_kv_heads = 3;
  CHECK_THROWS_WITH(GroupedOptions::from(c), Catch::Contains("attention.n_kv_heads") && Catch::Contains("multiple"));
  c = tiny_config("mqa");
  c.attention.n_kv_heads = 2;
  CHECK_THROWS_AS(GroupedOptions::from(c), UserError);
  CHECK_THROWS_WITH(make_attention(tiny_config("mlq")), Catch::Contains("attention.kind") && Catch::Contains("mla"));
}
