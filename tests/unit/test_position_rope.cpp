// Position encodings: RoPE's relative property, norm preservation, the
// rotate-half pair layout, partial RoPE and dims selection, the scalings
// (linear, NTK, YaRN with both corrections), ALiBi and learned positions.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "model/attention/grouped.h"
#include "model/position/rope.h"
#include "model/position/simple.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::AllClose;

namespace {
PositionConfig rope_config(const std::string& scaling = "none", double fraction = 1.0, const std::string& dims = "high") {
  PositionConfig c;
  c.kind = "rope";
  c.fraction = fraction;
  c.dims = dims;
  c.scaling.kind = scaling;
  c.scaling.factor = scaling == "none" ? 1.0 : 4.0;
  c.scaling.original_max_len = 64;
  return c;
}
torch::Tensor at_position(const Rope& rope, const torch::Tensor& x_E, int64_t pos) {
  return rope.rotate(x_E.view({1, 1, 1, -1}), pos).view({-1});
}
}  // namespace

TEST_CASE("RoPE: q.k depends only on the position difference", "[position]") {
  auto scaling = GENERATE(as<std::string>{}, "none", "linear", "ntk", "yarn");
  auto fraction = GENERATE(1.0, 0.5);
  Rope rope({rope_config(scaling, fraction), 32, 64});
  torch::manual_seed(0);
  auto q = torch::randn({16}, torch::kFloat64), k = torch::randn({16}, torch::kFloat64);
  auto dot = [&](int64_t m, int64_t n) { return at_position(rope, q, m).dot(at_position(rope, k, n)).item<double>(); };
  CHECK_THAT(dot(3, 1), Catch::WithinRel(dot(10, 8), 1e-12));
  CHECK_THAT(dot(3, 1), Catch::WithinRel(dot(202, 200), 1e-10));
  CHECK_THAT(dot(0, 7), Catch::WithinRel(dot(40, 47), 1e-12));
  // ...and does depend on it.
  CHECK(std::abs(dot(0, 0) - dot(20, 0)) > 1e-2);
}

TEST_CASE("RoPE preserves norms and pairs dim i with i + E/2 (rotate-half)", "[position]") {
  Rope rope({rope_config(), 32, 64});
  torch::manual_seed(1);
  auto x = torch::randn({2, 3, 5, 16}, torch::kFloat64);
  auto y = rope.rotate(x, 17);
  CHECK_THAT(y.norm(2, -1), AllClose(x.norm(2, -1), 1e-13));
  // A unit vector on dim 0 (frequency 1) turns into dims 0 and 8 only.
  auto e0 = torch::zeros({16}, torch::kFloat64);
  e0[0] = 1.0;
  auto r = at_position(rope, e0, 3);
  CHECK_THAT(r[0].item<double>(), Catch::WithinAbs(std::cos(3.0), 1e-14));
  CHECK_THAT(r[8].item<double>(), Catch::WithinAbs(std::sin(3.0), 1e-14));
  CHECK(r.abs().sum().item<double>() == Approx(std::abs(std::cos(3.0)) + std::abs(std::sin(3.0))));
  // Position 0 is the identity.
  CHECK(torch::equal(rope.rotate(x, 0).narrow(2, 0, 1), x.narrow(2, 0, 1)));
}

TEST_CASE("partial RoPE rotates exactly the dims its fraction and dims select", "[position]") {
  using Dims = std::vector<int64_t>;
  auto [dims, rotated] = GENERATE(table<std::string, Dims>({
      {"high", {0, 1, 2, 3, 8, 9, 10, 11}},
      {"low", {4, 5, 6, 7, 12, 13, 14, 15}},
      {"uniform", {0, 2, 4, 6, 8, 10, 12, 14}},
  }));
  INFO("dims=" << dims);
  Rope rope({rope_config("none", 0.5, dims), 32, 64});
  auto x = torch::ones({1, 1, 1, 16}, torch::kFloat64);
  auto changed = (rope.rotate(x, 5) - x).abs().gt(1e-12).view({-1});
  auto expected = torch::zeros({16}, torch::kBool);
  for (auto d : rotated) expected[d] = true;
  CHECK(torch::equal(changed, expected));
  // fraction 1 rotates everything (fraction 0 is refused: test_position_yarn.cpp).
  Rope all({rope_config("none", 1.0), 32, 64});
  CHECK((all.rotate(x, 5) - x).abs().gt(1e-12).all().item<bool>());
}

TEST_CASE("RoPE scalings change the frequencies as their formulas say", "[position]") {
  const double theta = 10000.0, e = 16.0;
  auto base = [&](int64_t i) { return std::pow(theta, -2.0 * double(i) / e); };
  SECTION("linear divides every frequency by the factor") {
    auto f = Rope({rope_config("linear"), 32, 64}).inv_freq(16);
    for (int64_t i = 0; i < 8; ++i) CHECK_THAT(f[size_t(i)], Catch::WithinRel(base(i) / 4.0, 1e-14));
  }
  SECTION("NTK scales the base by factor^(E/(E-2))") {
    auto f = Rope({rope_config("ntk"), 32, 64}).inv_freq(16);
    const double t2 = theta * std::pow(4.0, e / (e - 2.0));
    CHECK_THAT(f[0], Catch::WithinRel(1.0, 1e-14));
    CHECK_THAT(f[7], Catch::WithinRel(std::pow(t2, -14.0 / e), 1e-12));
  }
  SECTION("YaRN extrapolates fast pairs and interpolates slow ones") {
    // original context 64: correction dims 0 (beta_fast 32) and 3 (beta_slow 1).
    auto f = Rope({rope_config("yarn"), 32, 64}).inv_freq(16);
    CHECK_THAT(f[0], Catch::WithinRel(base(0), 1e-14));
    CHECK_THAT(f[1], Catch::WithinRel(base(1) / 4.0 * (1.0 / 3.0) + base(1) * (2.0 / 3.0), 1e-12));
    for (int64_t i = 3; i < 8; ++i) CHECK_THAT(f[size_t(i)], Catch::WithinRel(base(i) / 4.0, 1e-12));
  }
}

TEST_CASE("YaRN's temperature: visible at positions > 0, not at 0, and on cos/sin or on the softmax alike", "[position]") {
  // DeepSeek's convention (mscale and mscale_all_dim both set): cos/sin carry
  // m(mscale)/m(mscale_all_dim), the softmax scale m(mscale_all_dim)^2.
  auto deepseek = rope_config("yarn");
  deepseek.scaling.mscale = 1.0;
  deepseek.scaling.mscale_all_dim = 1.0;
  auto cooler = deepseek;  // same frequencies, a smaller temperature
  cooler.scaling.mscale = 0.5;
  cooler.scaling.mscale_all_dim = 0.5;
  // HF Llama's convention (mscale_all_dim 0): m(factor) rides on cos/sin only.
  auto llama = rope_config("yarn");
  llama.scaling.mscale_all_dim = 0.0;
  Rope with({deepseek, 32, 64}), colder({cooler, 32, 64}), l({llama, 32, 64});
  const double m = 0.1 * std::log(4.0) + 1.0;
  const double m_half = 0.05 * std::log(4.0) + 1.0;
  CHECK_THAT(with.softmax_scale_factor(), Catch::WithinRel(m * m, 1e-14));
  CHECK(with.rotation_scale() == 1.0);
  CHECK_THAT(colder.softmax_scale_factor(), Catch::WithinRel(m_half * m_half, 1e-14));
  CHECK(with.inv_freq(8) == colder.inv_freq(8));
  CHECK(l.softmax_scale_factor() == 1.0);
  CHECK_THAT(l.rotation_scale(), Catch::WithinRel(m, 1e-14));

  GroupedOptions o{32, 4, 4, 8};
  torch::manual_seed(2);
  GroupedAttention attn(o);
  attn.to(torch::kFloat64);
  auto x = torch::randn({1, 6, 32}, torch::kFloat64);
  AttnContext a{0, &with}, b{0, &colder}, c{0, &l};
  // One token at position 0: softmax over a single key ignores its scale.
  auto x0 = x.narrow(1, 0, 1);
  CHECK_THAT(attn.forward(x0, a), AllClose(attn.forward(x0, b), 1e-12));
  // Six tokens: the temperature moves the output.
  CHECK(test::rel_error(attn.forward(x, a), attn.forward(x, b)) > 1e-3);
  // With every head dim rotated, m on q and on k (cos/sin) is m^2 on the
  // scores: both conventions give the same attention.
  CHECK_THAT(attn.forward(x, a), AllClose(attn.forward(x, c), 1e-12));
}

TEST_CASE("ALiBi biases scores by -slope x distance, end-aligned for chunks", "[position]") {
  CHECK_THAT(alibi_slopes(8), Catch::Approx(std::vector<double>{0.5, 0.25, 0.125, 0.0625, 1.0 / 32, 1.0 / 64, 1.0 / 128, 1.0 / 256}));
  CHECK(alibi_slopes(6).size() == 6);
  Alibi alibi;
  auto bias = alibi.score_bias(8, 3, 2, 5, torch::TensorOptions().dtype(torch::kFloat64));
  CHECK(bias.sizes() == torch::IntArrayRef({8, 2, 5}));
  // Query 0 of this chunk is position 3: key 3 costs 0, key 0 costs 3 x slope.
  CHECK(bias[0][0][3].item<double>() == 0.0);
  CHECK(bias[0][0][0].item<double>() == -1.5);
  CHECK(bias[1][1][0].item<double>() == -1.0);
}

TEST_CASE("learned positions add rows start..start+T-1 and stop at max_seq_len", "[position]") {
  PositionConfig c;
  c.kind = "learned";
  auto p = make_position({c, 4, 10});
  auto wpe = p->named_parameters()["wpe"];
  auto x = torch::zeros({1, 3, 4});
  CHECK(torch::equal(p->embed(x, 2), wpe.narrow(0, 2, 3).unsqueeze(0)));
  CHECK_THROWS_AS(p->embed(x, 8), UserError);
}

TEST_CASE("the position registry lists every kind and names the key for unknown ones", "[position]") {
  CHECK(position_kinds() == std::vector<std::string>{"none", "learned", "alibi", "rope"});
  PositionConfig c;
  c.kind = "rotary";
  try {
    make_position({c, 4, 10});
    FAIL("expected a UserError");
  } catch (const UserError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("position.kind") && Catch::Contains("rope"));
  }
}
