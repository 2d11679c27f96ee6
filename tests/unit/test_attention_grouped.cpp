// Grouped-query attention: MHA, GQA and MQA against an attention written out
// in plain torch ops on the module's weights; K kv heads equal MHA whose k/v
// weights repeat per group.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "model/attention/grouped.h"
#include "model/attention/registry.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::tiny_config;

namespace {

// RoPE written out (rotate-half layout, every dim rotating, theta 10000): dim i
// pairs with i + E/2 at angle position * theta^(-2i/E).
torch::Tensor reference_rope(const torch::Tensor& x_BHTE, int64_t start) {
  const int64_t t = x_BHTE.size(2), e = x_BHTE.size(3);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto inv_freq = torch::pow(10000.0, -torch::arange(0, e, 2, opts) / static_cast<double>(e));
  auto angle_TP = torch::outer(torch::arange(start, start + t, opts), inv_freq);
  auto cos = torch::cat({angle_TP.cos(), angle_TP.cos()}, -1), sin = torch::cat({angle_TP.sin(), angle_TP.sin()}, -1);
  auto x1 = x_BHTE.narrow(-1, 0, e / 2), x2 = x_BHTE.narrow(-1, e / 2, e / 2);
  return x_BHTE * cos + torch::cat({-x2, x1}, -1) * sin;
}

// Grouped attention from plain torch ops in float64, on the module's weights:
// projections, kv head g serving query heads g*H/K .. (g+1)*H/K - 1, causal
// softmax(q k^T / sqrt(E)) v, output projection.
torch::Tensor reference_attention(GroupedAttention& m, const torch::Tensor& x_BTD, bool rope, int64_t start) {
  const auto& o = m.options();
  const int64_t b = x_BTD.size(0), t = x_BTD.size(1), h = o.n_heads, k = o.n_kv_heads, e = o.head_dim;
  auto x = x_BTD.to(torch::kFloat64);
  auto w = [](const torch::nn::Linear& l) { return l->weight.detach().to(torch::kFloat64); };
  auto q = torch::matmul(x, w(m.wq).t()).view({b, t, h, e}).transpose(1, 2);
  auto kk = torch::matmul(x, w(m.wk).t()).view({b, t, k, e}).transpose(1, 2);
  auto v = torch::matmul(x, w(m.wv).t()).view({b, t, k, e}).transpose(1, 2);
  if (rope) {
    q = reference_rope(q, start);
    kk = reference_rope(kk, start);
  }
  kk = kk.repeat_interleave(h / k, 1);
  v = v.repeat_interleave(h / k, 1);
  auto scores = torch::matmul(q, kk.transpose(-1, -2)) / std::sqrt(static_cast<double>(e));
  auto future = torch::ones({t, t}, torch::kBool).triu(1);
  auto p = torch::softmax(scores.masked_fill(future, -std::numeric_limits<double>::infinity()), -1);
  auto out = torch::matmul(p, v).transpose(1, 2).reshape({b, t, h * e});
  return torch::matmul(out, w(m.wo).t());
}

}  // namespace

TEST_CASE("grouped attention (MHA, GQA, MQA) equals a plain-torch reference on its own weights", "[attention]") {
  auto [kind, k] = GENERATE(table<std::string, int64_t>({{"mha", 4}, {"gqa", 4}, {"gqa", 2}, {"mqa", 1}}));
  auto position = GENERATE(as<std::string>{}, "none", "rope");
  auto backend = GENERATE(Backend::kMath, Backend::kSdpa);
  const int64_t start = GENERATE(0, 5);
  INFO(kind << " K=" << k << " position " << position << " backend " << static_cast<int>(backend) << " start " << start);
  auto config = tiny_config(kind);
  if (kind == "gqa") config.attention.set("n_kv_heads", k);
  config.position.kind = position;
  torch::manual_seed(21);
  auto attn = std::dynamic_pointer_cast<GroupedAttention>(make_attention(config));
  REQUIRE(attn);
  REQUIRE(attn->options().n_kv_heads == k);
  auto pos = make_position({config.position, config.d_model, config.max_seq_len});
  auto x = torch::randn({2, 7, 32});
  AttnContext ctx{start, pos.get()};
  ctx.backend = backend;
  torch::NoGradGuard no_grad;
  // fp32 module against the fp64 reference.
  CHECK_THAT(attn->forward(x, ctx), AllClose(reference_attention(*attn, x, position == "rope", start), 1e-5));
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
  c.attention.set("n_kv_heads", 3);
  CHECK_THROWS_WITH(GroupedOptions::from(c), Catch::Contains("attention.n_kv_heads") && Catch::Contains("multiple"));
  c = tiny_config("mqa");
  c.attention.set("n_kv_heads", 2);
  CHECK_THROWS_AS(GroupedOptions::from(c), UserError);
  CHECK_THROWS_WITH(make_attention(tiny_config("mlq")), Catch::Contains("attention.kind") && Catch::Contains("mla"));
}
