// Cross-layer KV sharing (model.kv_share, CLA; Brandon et al. 2024) for every
// registered variant: decode through the shared cache equals the full
// forward, the layers that read their group's state have no weights for it
// and cache nothing of their own where the cache is the state, the counts
// and layouts computed from the config agree with the built model, and a
// two-layer MHA group equals a forward written out by hand.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "model/attention/registry.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::tiny_config;
using torch::indexing::Slice;

namespace {

using attnlab::test::Variant;

// Every registry test configuration at four layers, shared in groups of 2
// (two full groups) and 3 (a group of 3 and a group of 1).
std::vector<Variant> shared_variants() {
  std::vector<Variant> out;
  ModelConfig base = tiny_config("mha");
  base.n_layers = 4;
  for (const auto& [label, config] : attnlab::test::registry_variants(base))
    for (int64_t share : {2, 3}) {
      auto c = config;
      c.kv_share = share;
      out.push_back({label + " kv_share=" + std::to_string(share), c});
    }
  return out;
}

// The decode mode caches exactly the shared state (no naive k and v per layer).
bool caches_state(const ModelConfig& c) {
  return attention_entry(c.attention.kind).decode_modes().empty() || c.attention.word("decode") == "absorbed";
}

}  // namespace

TEST_CASE("kv_share: cached decode token by token and chunked prefill equal the full forward", "[attention][kv][kv_share]") {
  auto variant = GENERATE(from_range(shared_variants()));
  auto position = GENERATE(as<std::string>{}, "rope", "alibi");
  auto config = variant.config;
  config.position.kind = position;
  INFO(variant.name << " with " << position);
  torch::manual_seed(11);
  TransformerLM lm(config);
  lm->eval();
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(config.vocab_size, {2, 10}, torch::kLong);
  auto full = lm->forward(tokens);

  auto steps_cache = lm->make_cache(2, 10);
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < 10; ++t) steps.push_back(lm->forward(tokens.index({Slice(), Slice(t, t + 1)}), steps_cache));
  CHECK(steps_cache.length() == 10);
  CHECK_THAT(torch::cat(steps, 1), AllClose(full, 1e-5));
  if (caches_state(config) && !attention_entry(config.attention.kind).decode_modes().empty())
    CHECK(lm->last_path() == InnerPath::kAbsorbed);  // the last layer, a reading one when kv_share divides 4 .. 3

  auto chunk_cache = lm->make_cache(2, 10);
  auto a = lm->forward(tokens.index({Slice(), Slice(0, 3)}), chunk_cache);
  auto b = lm->forward(tokens.index({Slice(), Slice(3, 10)}), chunk_cache);
  CHECK_THAT(torch::cat({a, b}, 1), AllClose(full, 1e-5));
}

TEST_CASE("kv_share: reading layers have no state weights, and the config's counts and layouts are the model's",
          "[model][kv][kv_share]") {
  auto variant = GENERATE(from_range(shared_variants()));
  INFO(variant.name);
  const auto& config = variant.config;
  const auto& entry = attention_entry(config.attention.kind);
  TransformerLM shared(config);
  auto alone = config;
  alone.kv_share = 1;
  TransformerLM unshared(alone);

  const int64_t share = config.kv_share;
  int64_t readers = 0;
  for (int64_t i = 0; i < config.n_layers; ++i) {
    INFO("layer " << i);
    const bool reads = i % share != 0;
    readers += reads ? 1 : 0;
    CHECK(shared->blocks()[i]->attn->reads_shared() == reads);
    int64_t built = 0;
    for (const auto& p : shared->blocks()[i]->attn->parameters()) built += p.numel();
    CHECK(built == entry.params(config) - (reads ? entry.state_params(config) : 0));
    // A reading layer caches nothing where the cache is the state, its own k and v in a naive decode.
    const auto layout = shared->blocks()[i]->attn->cache_layout();
    if (reads && caches_state(config)) CHECK(layout.parts.empty());
    else CHECK(layout == entry.layout(config));
  }
  CHECK(entry.state_params(config) > 0);
  CHECK(shared->n_params_attention() == attention_params(config));
  CHECK(unshared->n_params_attention() - shared->n_params_attention() == readers * entry.state_params(config));
  const bool layouts_agree = shared->cache_layouts() == layer_layouts(config);
  CHECK(layouts_agree);

  // The cache shrinks by exactly the reading layers' caches, in bytes really allocated.
  auto shared_cache = shared->make_cache(2, 6), unshared_cache = unshared->make_cache(2, 6);
  const int64_t per_layer = unshared_cache.bytes() / config.n_layers;
  CHECK(shared_cache.bytes() == unshared_cache.bytes() - (caches_state(config) ? readers * per_layer : 0));
  CHECK(shared_cache.bytes() == 2 * 6 * shared->kv_bytes_per_token());
}

TEST_CASE("kv_share: a two-layer MHA group equals its forward written out by hand", "[attention][kv_share]") {
  // Layer 1 attends with its own queries over layer 0's keys and values,
  // which layer 0 projected from its own input.
  auto config = tiny_config("mha");
  config.kv_share = 2;
  config.attention.backend = "math";
  torch::manual_seed(3);
  TransformerLM lm(config);
  lm->to(torch::kFloat64);
  lm->eval();
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(config.vocab_size, {2, 7}, torch::kLong);
  const int64_t b = 2, t = 7, h = config.n_heads, e = config.resolved_head_dim();
  auto params = lm->named_parameters();
  auto w = [&](const std::string& name) { return params[name]; };
  auto rms = [](const torch::Tensor& x, const torch::Tensor& g) {
    return x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6) * g;
  };
  // RoPE, rotate-half pairs (i, i + E/2), theta 10000, written here.
  auto rope = [&](const torch::Tensor& x_BHTE) {
    auto pos = torch::arange(t, torch::kFloat64).unsqueeze(1);
    auto inv = torch::pow(10000.0, -torch::arange(0, e, 2, torch::kFloat64) / static_cast<double>(e));
    auto ang = pos * inv.unsqueeze(0);  // [T, E/2]
    auto cos = torch::cat({ang.cos(), ang.cos()}, -1), sin = torch::cat({ang.sin(), ang.sin()}, -1);
    auto x1 = x_BHTE.narrow(-1, 0, e / 2), x2 = x_BHTE.narrow(-1, e / 2, e / 2);
    return x_BHTE * cos + torch::cat({-x2, x1}, -1) * sin;
  };
  auto heads = [&](const torch::Tensor& y) { return y.view({b, t, h, e}).transpose(1, 2); };
  auto attend = [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    auto s = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(e));
    s = s.masked_fill(torch::ones({t, t}, torch::kBool).triu(1), -INFINITY);
    return torch::matmul(torch::softmax(s, -1), v).transpose(1, 2).reshape({b, t, h * e});
  };
  auto mlp = [&](int l, const torch::Tensor& x) {
    auto pre = "block" + std::to_string(l) + ".mlp.";
    return torch::matmul(torch::gelu(torch::matmul(x, w(pre + "up.weight").t())), w(pre + "down.weight").t());
  };
  auto x = w("wte.weight").index({tokens});
  auto a0 = rms(x, w("block0.norm1.weight"));
  auto k0 = rope(heads(torch::matmul(a0, w("block0.attn.wk.weight").t())));
  auto v0 = heads(torch::matmul(a0, w("block0.attn.wv.weight").t()));
  auto q0 = rope(heads(torch::matmul(a0, w("block0.attn.wq.weight").t())));
  x = x + torch::matmul(attend(q0, k0, v0), w("block0.attn.wo.weight").t());
  x = x + mlp(0, rms(x, w("block0.norm2.weight")));
  auto a1 = rms(x, w("block1.norm1.weight"));
  auto q1 = rope(heads(torch::matmul(a1, w("block1.attn.wq.weight").t())));
  x = x + torch::matmul(attend(q1, k0, v0), w("block1.attn.wo.weight").t());
  x = x + mlp(1, rms(x, w("block1.norm2.weight")));
  auto logits = torch::matmul(rms(x, w("norm_f.weight")), w("wte.weight").t());

  CHECK(params.find("block1.attn.wk.weight") == nullptr);
  CHECK_THAT(lm->forward(tokens), AllClose(logits, 1e-10));
}

TEST_CASE("kv_share: every variant trains and match_params keeps MHA's count", "[model][kv_share]") {
  auto kind = GENERATE(from_range(attention_kinds()));
  auto config = tiny_config(kind);
  config.n_layers = 4;
  config.d_model = 64;
  config.kv_share = 2;
  INFO(kind);
  torch::manual_seed(4);
  TransformerLM lm(config);
  torch::optim::AdamW opt(lm->parameters(), torch::optim::AdamWOptions(1e-2));
  auto tokens = torch::randint(config.vocab_size, {4, 12}, torch::kLong);
  auto loss_of = [&] {
    auto logits = lm->forward(tokens.narrow(1, 0, 11));
    return torch::cross_entropy_loss(logits.reshape({-1, config.vocab_size}), tokens.narrow(1, 1, 11).reshape({-1}));
  };
  auto loss = loss_of();
  loss.backward();
  for (const auto& p : lm->named_parameters()) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(p.value().grad().abs().sum().item<double>() > 0.0);
  }
  opt.step();
  CHECK(loss_of().item<double>() < loss.item<double>());

  auto mha = tiny_config("mha");
  mha.n_layers = 4;
  mha.d_model = 64;
  TransformerLM reference(mha);
  config.match_params = true;
  TransformerLM matched(config);
  const double target = static_cast<double>(reference->n_params());
  INFO("MHA " << reference->n_params() << ", matched " << matched->n_params() << " (d_ff " << matched->d_ff() << ")");
  CHECK(std::abs(static_cast<double>(matched->n_params()) - target) / target <= 0.005);
  // The readers' missing state weights went to the MLPs.
  auto unshared = config;
  unshared.kv_share = 1;
  CHECK(matched->d_ff() > TransformerLM(unshared)->d_ff());
}
