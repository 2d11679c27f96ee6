// The transformer as training sees it: output shape, exact causality, the
// tied head, scaled residual init, parameter counts and match_params.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "model/attention/registry.h"
#include "model/transformer.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::tiny_config;

TEST_CASE("the LM maps [B,T] tokens to [B,T,V] logits", "[model]") {
  auto config = GENERATE(tiny_config("mha"), tiny_config("gqa"), tiny_config("mqa"), tiny_config("mla"));
  torch::manual_seed(0);
  TransformerLM lm(config);
  auto tokens = torch::randint(config.vocab_size, {3, 7}, torch::kLong);
  auto logits = lm->forward(tokens);
  CHECK(logits.sizes() == torch::IntArrayRef({3, 7, config.vocab_size}));
  CHECK(logits.scalar_type() == torch::kFloat32);
  CHECK(torch::isfinite(logits).all().item<bool>());
}

TEST_CASE("the LM is exactly causal in fp64", "[model]") {
  auto kind = GENERATE(as<std::string>{}, "mha", "gqa", "mqa", "mla");
  auto position = GENERATE(as<std::string>{}, "rope", "alibi", "learned", "none");
  auto config = tiny_config(kind);
  config.position.kind = position;
  torch::manual_seed(1);
  TransformerLM lm(config);
  lm->to(torch::kFloat64);
  auto tokens = torch::randint(config.vocab_size, {2, 9}, torch::kLong);
  auto changed = tokens.clone();
  const int64_t t0 = 5;
  changed.index_put_({torch::indexing::Slice(), t0}, (tokens.index({torch::indexing::Slice(), t0}) + 1) % config.vocab_size);
  auto a = lm->forward(tokens), b = lm->forward(changed);
  using torch::indexing::Slice;
  // Logits before t0 are bit-identical; at t0 and after they move.
  CHECK(torch::equal(a.index({Slice(), Slice(0, t0)}), b.index({Slice(), Slice(0, t0)})));
  CHECK_FALSE(torch::allclose(a.index({Slice(), t0}), b.index({Slice(), t0})));
  CHECK_FALSE(torch::allclose(a.index({Slice(), -1}), b.index({Slice(), -1})));
}

TEST_CASE("tied embeddings share one tensor and untied ones do not", "[model]") {
  auto config = tiny_config();
  TransformerLM tied(config);
  config.tie_embeddings = false;
  TransformerLM untied(config);
  // The untied head adds exactly V·D parameters.
  CHECK(untied->n_params() - tied->n_params() == config.vocab_size * config.d_model);
  auto params = tied->named_parameters();
  CHECK_FALSE(params.contains("lm_head.weight"));
  // Changing the embedding changes the logits through the head as well.
  auto tokens = torch::tensor({{1, 2, 3}}, torch::kLong);
  auto before = tied->forward(tokens);
  {
    torch::NoGradGuard g;
    params["wte.weight"][7].add_(1.0);  // a token absent from the input: only the head sees it
  }
  auto after = tied->forward(tokens);
  using torch::indexing::Slice;
  CHECK_FALSE(torch::allclose(before.index({Slice(), Slice(), 7}), after.index({Slice(), Slice(), 7})));
  CHECK(torch::equal(before.index({Slice(), Slice(), 6}), after.index({Slice(), Slice(), 6})));
}

TEST_CASE("residual projections start with std 0.02/sqrt(2 n_layers)", "[model]") {
  auto config = tiny_config();
  config.n_layers = 8;
  config.d_model = 128;
  config.n_heads = 4;
  torch::manual_seed(3);
  TransformerLM lm(config);
  const double residual = 0.02 / std::sqrt(16.0);
  for (const auto& b : lm->blocks()) {
    CHECK_THAT(b->attn->output_weight().std().item<double>(), Catch::WithinRel(residual, 0.05));
    CHECK_THAT(b->mlp->down->weight.std().item<double>(), Catch::WithinRel(residual, 0.05));
  }
  auto params = lm->named_parameters();
  CHECK_THAT(params["block0.attn.wq.weight"].std().item<double>(), Catch::WithinRel(0.02, 0.05));
  CHECK(params["block0.norm1.weight"].eq(1).all().item<bool>());
}

namespace {
// Closed forms, written out independently of the code that builds the layers.
int64_t attention_formula(const ModelConfig& c) {
  const int64_t d = c.d_model, h = c.n_heads, e = c.resolved_head_dim();
  const auto& a = c.attention;
  if (a.kind == "mha") return 4 * d * h * e;
  if (a.kind == "mqa") return 2 * d * h * e + 2 * d * e;
  if (a.kind == "gqa") return 2 * d * h * e + 2 * d * a.integer("n_kv_heads") * e;
  const int64_t r = a.word("rope_mode") == "decoupled" ? a.integer("rope_dim") : 0;
  const int64_t qr = a.integer("q_rank"), c_ = a.integer("kv_rank"), n = a.integer("nope_dim"), v = a.integer("v_dim");
  const int64_t q = qr > 0 ? d * qr + qr + qr * h * (n + r) : d * h * (n + r);
  return q + d * (c_ + r) + c_ + c_ * h * (n + v) + h * v * d;
}

std::vector<std::string> kinds_but_mha() {
  std::vector<std::string> out;
  for (const auto& k : attention_kinds())
    if (k != "mha") out.push_back(k);
  return out;
}
}  // namespace

TEST_CASE("every variant's closed-form parameter count is its built layer's", "[model]") {
  std::vector<std::pair<std::string, ModelConfig>> configs;
  for (const auto& entry : attention_registry())
    for (const auto& [label, config] : entry.test_configs(tiny_config("mha"))) configs.emplace_back(label, config);
  auto [label, config] = GENERATE_COPY(from_range(configs));
  INFO(label);
  int64_t built = 0;
  for (const auto& p : make_attention(config)->parameters()) built += p.numel();
  CHECK(attention_entry(config.attention.kind).params(config) == built);
}

TEST_CASE("parameter counts equal the closed-form formulas", "[model]") {
  auto config = GENERATE(tiny_config("mha"), tiny_config("gqa"), tiny_config("mqa"), tiny_config("mla"));
  auto mlp = GENERATE(as<std::string>{}, "gelu", "swiglu");
  auto q_rank = GENERATE(as<int64_t>{}, 0, 16);
  config.mlp = mlp;
  config.attention.set("q_rank", config.attention.kind == "mla" ? q_rank : 0);
  TransformerLM lm(config);
  const int64_t d = config.d_model, v = config.vocab_size, l = config.n_layers;
  const int64_t f = mlp == "gelu" ? 4 * d : 88;  // SwiGLU: 8/3·32 = 85.3, rounded up to a multiple of 8
  const int64_t mlp_params = (mlp == "gelu" ? 2 : 3) * d * f;
  const int64_t attn = attention_formula(config);
  CHECK(lm->d_ff() == f);
  CHECK(lm->n_params_attention() == l * attn);
  CHECK(lm->n_params() == v * d + l * (attn + 2 * d + mlp_params) + d);
}

TEST_CASE("match_params gives every variant MHA's parameter count within 0.5%", "[model]") {
  auto base = tiny_config("mha");
  base.d_model = 64;
  TransformerLM mha(base);
  auto kind = GENERATE(from_range(kinds_but_mha()));
  auto mlp = GENERATE(as<std::string>{}, "gelu", "swiglu");
  auto config = tiny_config(kind);
  config.d_model = 64;
  config.mlp = mlp;
  base.mlp = mlp;
  TransformerLM reference(base);
  TransformerLM unmatched(config);
  config.match_params = true;
  TransformerLM matched(config);
  const double target = static_cast<double>(reference->n_params());
  INFO(kind << "/" << mlp << ": MHA " << reference->n_params() << ", unmatched " << unmatched->n_params()
            << ", matched " << matched->n_params() << " (d_ff " << matched->d_ff() << ")");
  CHECK(std::abs(static_cast<double>(matched->n_params()) - target) / target <= 0.005);
  // The unmatched variant was off by more than that, so the sizing did something.
  CHECK(std::abs(static_cast<double>(unmatched->n_params()) - target) / target > 0.005);
  CHECK(matched->d_ff() != unmatched->d_ff());
}

TEST_CASE("every variant trains: gradients reach all parameters and a step lowers the loss", "[model]") {
  auto kind = GENERATE(from_range(attention_kinds()));
  auto position = GENERATE(as<std::string>{}, "rope", "learned");
  auto config = tiny_config(kind);
  config.position.kind = position;
  torch::manual_seed(4);
  TransformerLM lm(config);
  torch::optim::AdamW opt(lm->parameters(), torch::optim::AdamWOptions(1e-2));
  auto tokens = torch::randint(config.vocab_size, {4, 12}, torch::kLong);
  auto loss_of = [&] {
    auto logits = lm->forward(tokens.narrow(1, 0, 11));
    return torch::cross_entropy_loss(logits.reshape({-1, config.vocab_size}), tokens.narrow(1, 1, 11).reshape({-1}));
  };
  auto loss = loss_of();
  // At init the logits are near zero: the loss is close to ln V.
  CHECK_THAT(loss.item<double>(), Catch::WithinRel(std::log(double(config.vocab_size)), 0.05));
  opt.zero_grad();
  loss.backward();
  for (const auto& p : lm->named_parameters()) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(p.value().grad().abs().sum().item<double>() > 0.0);
  }
  opt.step();
  CHECK(loss_of().item<double>() < loss.item<double>());
}
