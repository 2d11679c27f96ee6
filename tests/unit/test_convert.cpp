// MHA/GQA -> MLA by SVD (model/convert.h): at full rank with every rotating
// pair kept the converted model reproduces the source's logits and its
// cached absorbed decode; from full RoPE it equals the source with only the
// kept pairs rotating; below full rank it is lossy by exactly the singular
// values it drops; requests that cannot convert name their option.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "model/attention/grouped.h"
#include "model/attention/latent.h"
#include "model/convert.h"
#include "model/transformer.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;
using attnlab::test::tiny_config;

namespace {

// The source shape: D=32, H=4, E=8, three layers, RoPE on the pairs `dims` keeps at `fraction`.
ModelConfig source_config(const std::string& kind, const std::string& dims, double fraction) {
  auto c = tiny_config(kind);
  c.n_layers = 3;
  c.position.dims = dims;
  c.position.fraction = fraction;
  return c;
}

// Applies the conversion's key=value overrides to a copy of the source config
// (what `attnlab convert` composes them into).
ModelConfig target_config(const ModelConfig& source, const MlaConversion& request) {
  ModelConfig c = source;
  for (const auto& o : mla_overrides(source, request)) {
    const auto eq = o.find('=');
    const std::string key = o.substr(0, eq), value = o.substr(eq + 1);
    const bool number = !value.empty() && (std::isdigit(static_cast<unsigned char>(value[0])) != 0);
    if (key == "attention.kind") c.attention.kind = value;
    else if (key.starts_with("attention.") && number) c.attention.set(key.substr(10), std::stoll(value));
    else if (key.starts_with("attention.")) c.attention.set(key.substr(10), value);
    else if (key == "position.dims") c.position.dims = value;
    else if (key == "position.fraction") c.position.fraction = std::stod(value);
    else if (key == "model.d_ff") c.d_ff = std::stoll(value);
    else if (key == "model.match_params") c.match_params = value == "true";
    else FAIL("unexpected override " << o);
  }
  return c;
}

struct Pair {
  TransformerLM source{nullptr}, target{nullptr};
  ConversionReport report;
};

Pair convert(const ModelConfig& sc, const MlaConversion& request, torch::ScalarType dtype) {
  torch::manual_seed(21);
  Pair p;
  p.source = TransformerLM(sc);
  p.target = TransformerLM(target_config(sc, request));
  p.source->to(dtype);
  p.target->to(dtype);
  p.report = convert_to_mla(*p.source, *p.target);
  p.source->eval();
  p.target->eval();
  return p;
}

}  // namespace

TEST_CASE("convert at full rank reproduces the source's logits and cached decode", "[convert]") {
  auto kind = GENERATE(as<std::string>{}, "mha", "gqa", "mqa");
  auto dims = GENERATE(as<std::string>{}, "high", "low", "uniform");
  INFO(kind << " trained with partial RoPE dims=" << dims << " fraction 0.5");
  const auto sc = source_config(kind, dims, 0.5);
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(sc.vocab_size, {2, 12}, torch::kLong);

  auto exact = convert(sc, {}, torch::kFloat64);
  CHECK(exact.report.kv_rank == exact.report.full_rank);
  for (double e : exact.report.energy_kept) CHECK(e == Approx(1.0).margin(1e-12));
  const auto expected = exact.source->forward(tokens);
  CHECK_THAT(exact.target->forward(tokens), AllClose(expected, 1e-10));
  // The latent cache, decoded absorbed token by token, gives the same logits.
  auto cache = exact.target->make_cache(2, 12, torch::kFloat64);
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < 12; ++t) steps.push_back(exact.target->forward(tokens.narrow(1, t, 1), cache));
  CHECK(exact.target->last_path() == InnerPath::kAbsorbed);
  CHECK_THAT(torch::cat(steps, 1), AllClose(expected, 1e-10));
  // MHA's 2·H·E = 64 per layer against the full-rank latent's min(48, 32) + H·d_r = 48.
  if (kind == "mha") CHECK(exact.target->kv_elements_per_token() == 3 * 48);

  auto fp32 = convert(sc, {}, torch::kFloat32);
  CHECK_THAT(fp32.target->forward(tokens), AllClose(fp32.source->forward(tokens), 1e-5));
}

TEST_CASE("from full RoPE, the full-rank conversion is the source with only the kept pairs rotating", "[convert]") {
  auto dims = GENERATE(as<std::string>{}, "high", "uniform");
  const auto sc = source_config("mha", "first", 1.0);
  torch::NoGradGuard no_grad;
  auto p = convert(sc, {0, dims, 0.5}, torch::kFloat64);
  auto tokens = torch::randint(sc.vocab_size, {2, 12}, torch::kLong);
  // The same weights with partial RoPE: the MHA2MLA step before the SVD.
  auto partial_cfg = sc;
  partial_cfg.position.dims = dims;
  partial_cfg.position.fraction = 0.5;
  TransformerLM partial(partial_cfg);
  partial->to(torch::kFloat64);
  {
    auto from = p.source->named_parameters();
    for (auto& q : partial->named_parameters()) q.value().copy_(from[q.key()]);
  }
  partial->eval();
  const auto target = p.target->forward(tokens);
  CHECK_THAT(target, AllClose(partial->forward(tokens), 1e-10));
  // Dropping rotary pairs changed the function (the fine-tune's job to recover).
  // (Small at random init, where attention is nearly uniform, but far above rounding.)
  CHECK((target - p.source->forward(tokens)).abs().max().item<double>() > 1e-6);
}

TEST_CASE("below full rank the conversion drops exactly the smallest singular values", "[convert]") {
  const auto sc = source_config("mha", "high", 0.5);
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(sc.vocab_size, {2, 12}, torch::kLong);
  const int64_t full = full_kv_rank(sc, 4);
  CHECK(full == std::min<int64_t>(4 * (2 * 8 - 4), 32));  // K(2E - d_r) = 48 rows, D = 32 columns
  double previous_energy = 0.0, previous_error = 1e9;
  for (int64_t rank : {2, 8, 16, 24}) {
    INFO("kv_rank " << rank);
    auto p = convert(sc, {rank, "", 0.0}, torch::kFloat64);
    const double energy = p.report.energy_kept.front();
    CHECK(energy < 1.0);
    CHECK(energy > previous_energy);
    previous_energy = energy;
    // Layer 0's joint matrix [W_K,nope; W_V] against what the converted layer
    // maps the latent back to, computed here from the built weights: its
    // squared error is the dropped singular values' (Eckart-Young).
    const auto& src = dynamic_cast<const GroupedAttention&>(*p.source->blocks()[0]->attn);
    const auto& dst = dynamic_cast<const LatentAttention&>(*p.target->blocks()[0]->attn);
    auto wk = src.wk->weight.view({4, 8, 32}), wv = src.wv->weight.view({4, 8, 32});
    // dims=high at fraction 0.5 keeps pairs 0, 1: rotary dims 0, 1, 4, 5; nope dims 2, 3, 6, 7.
    auto nope = torch::tensor(std::vector<int64_t>{2, 3, 6, 7});
    auto joint = torch::cat({wk.index_select(1, nope).reshape({16, 32}), wv.reshape({32, 32})}, 0);
    auto down = dst.wkv_a->weight.narrow(0, 0, rank);                        // [R, D]
    auto up = dst.wkv_b->weight.view({4, 4 + 8, rank});                      // per head: [d_n key, d_v value]
    auto rebuilt = torch::cat({up.narrow(1, 0, 4).reshape({16, rank}), up.narrow(1, 4, 8).reshape({32, rank})}, 0);
    auto residual = (joint - torch::matmul(rebuilt, down)).pow(2).sum().item<double>();
    auto s = torch::linalg_svdvals(joint);
    CHECK(residual == Approx(s.narrow(0, rank, s.size(0) - rank).pow(2).sum().item<double>()).epsilon(1e-8));
    const double error = (p.target->forward(tokens) - p.source->forward(tokens)).abs().max().item<double>();
    CHECK(error > 1e-8);
    CHECK(error < previous_error * 1.5);  // not monotone per logit, but no blow-up as the rank grows
    previous_error = error;
  }
}

TEST_CASE("requests that cannot convert name their option", "[convert]") {
  auto expect = [](const ModelConfig& c, const MlaConversion& r, const std::string& key, const std::string& text) {
    INFO(key << ": " << text);
    try {
      mla_overrides(c, r);
      FAIL("converted");
    } catch (const UserError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains(key) && Catch::Contains(text));
    }
  };
  expect(tiny_config("mla"), {}, "--to", "attention is mla");
  expect(source_config("mha", "high", 0.5), {40, "", 0.0}, "--kv-rank", "exceeds the joint matrix's rank bound");
  expect(source_config("mha", "first", 1.0), {0, "high", 1.0}, "--rope-fraction", "keeps every rotary pair");
  expect(source_config("mha", "first", 1.0), {0, "high", 0.3}, "--rope-fraction", "gives 2.4 rotary dims");
  expect(source_config("mha", "high", 0.5), {0, "low", 0.0}, "--rope-dims", "keeps those pairs");
  expect(source_config("mha", "first", 0.5), {}, "--rope-dims", "a spectrum of its own");
  auto alibi = source_config("mha", "first", 1.0);
  alibi.position.kind = "alibi";
  expect(alibi, {}, "--rope-dims", "position.kind is alibi");
}
