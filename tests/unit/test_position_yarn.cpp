// YaRN against HuggingFace transformers' own _compute_yarn_parameters and
// DeepseekV3Attention's softmax factor (tests/fixtures/yarn_golden.txt, made by
// scripts/reference/yarn_fixture.py): every mscale / mscale_all_dim case,
// partial RoPE over the rotary width, and 8+ rotary pairs with a partial ramp.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/position/rope.h"

using namespace attnlab;
using namespace attnlab::model;

namespace {

struct YarnCase {
  std::string name;
  int64_t width = 0;
  PositionConfig config;
  std::vector<double> inv_freq;
  double rotation_scale = 0, softmax_factor = 0;
};

std::vector<YarnCase> read_cases() {
  std::ifstream in(ATTNLAB_SOURCE_DIR "/tests/fixtures/yarn_golden.txt");
  REQUIRE(in.good());
  std::string line, word;
  std::getline(in, line);
  REQUIRE(line == "attnlab-yarn 1");
  std::vector<YarnCase> cases;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    s >> word;
    if (word == "case") {
      YarnCase c;
      auto& p = c.config;
      p.kind = "rope";
      p.dims = "first";
      p.scaling.kind = "yarn";
      std::string key;
      s >> c.name;
      while (s >> key) {
        if (key == "width") s >> c.width;
        else if (key == "fraction") s >> p.fraction;
        else if (key == "theta") s >> p.theta;
        else if (key == "factor") s >> p.scaling.factor;
        else if (key == "original") s >> p.scaling.original_max_len;
        else if (key == "beta_fast") s >> p.scaling.beta_fast;
        else if (key == "beta_slow") s >> p.scaling.beta_slow;
        else if (key == "mscale") s >> p.scaling.mscale;
        else if (key == "mscale_all_dim") s >> p.scaling.mscale_all_dim;
        else FAIL("unknown fixture key " << key);
      }
      cases.push_back(c);
    } else if (word == "inv_freq") {
      size_t n = 0;
      s >> n;
      cases.back().inv_freq.resize(n);
      for (auto& v : cases.back().inv_freq) s >> v;
    } else if (word == "rotation_scale") {
      s >> cases.back().rotation_scale;
    } else if (word == "softmax_factor") {
      s >> cases.back().softmax_factor;
    }
  }
  return cases;
}

}  // namespace

TEST_CASE("YaRN frequencies and both temperatures equal HuggingFace's, in every mscale case", "[position][golden]") {
  const auto cases = read_cases();
  REQUIRE(cases.size() >= 6);
  for (const auto& c : cases) {
    INFO("case " << c.name);
    // max_seq_len is not used: original_max_len is set in every case.
    Rope rope({c.config, 4 * c.width, 4096});
    const auto f = rope.inv_freq(c.width);
    REQUIRE(f.size() == c.inv_freq.size());
    REQUIRE(f.size() >= 8);
    for (size_t i = 0; i < f.size(); ++i) {
      INFO("pair " << i);
      // HF computes in float32: 1e-6 relative is its rounding, far below any convention error.
      CHECK_THAT(f[i], Catch::WithinRel(c.inv_freq[i], 1e-6));
    }
    CHECK_THAT(rope.rotation_scale(), Catch::WithinRel(c.rotation_scale, 1e-9));
    CHECK_THAT(rope.softmax_scale_factor(), Catch::WithinRel(c.softmax_factor, 1e-9));
  }
}

TEST_CASE("partial RoPE (dims=first) rotates the first W dims with their own spectrum, and the rest pass", "[position]") {
  PositionConfig p;
  p.kind = "rope";
  p.fraction = 0.25;  // 32 dims -> the first 8 rotate, pairs (i, i+4)
  p.dims = "first";
  Rope rope({p, 128, 64});
  CHECK(rope.rotary_width(32) == 8);
  const auto f = rope.inv_freq(32);
  REQUIRE(f.size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK_THAT(f[i], Catch::WithinRel(std::pow(10000.0, -2.0 * double(i) / 8.0), 1e-14));

  torch::manual_seed(0);
  auto x = torch::randn({1, 1, 3, 32}, torch::kFloat64);
  auto y = rope.rotate(x, 5);
  CHECK(torch::equal(y.narrow(-1, 8, 24), x.narrow(-1, 8, 24)));
  // Dim 1 (pair 1, frequency theta^(-2/8)) turns into dims 1 and 5 by angle pos * f1.
  auto e1 = torch::zeros({1, 1, 1, 32}, torch::kFloat64);
  e1[0][0][0][1] = 1.0;
  auto r = rope.rotate(e1, 7).view({-1});
  const double a = 7.0 * f[1];
  CHECK_THAT(r[1].item<double>(), Catch::WithinAbs(std::cos(a), 1e-14));
  CHECK_THAT(r[5].item<double>(), Catch::WithinAbs(std::sin(a), 1e-14));
  CHECK_THAT(r.abs().sum().item<double>(), Catch::WithinAbs(std::abs(std::cos(a)) + std::abs(std::sin(a)), 1e-14));
}

TEST_CASE("a fraction that leaves no rotary pair is a user error naming position.fraction", "[position]") {
  PositionConfig p;
  p.kind = "rope";
  p.fraction = 0.1;  // 8 dims -> 0.8 rotary dims
  Rope rope({p, 32, 64});
  auto x = torch::ones({1, 1, 2, 8});
  try {
    rope.rotate(x, 0);
    FAIL("expected a UserError");
  } catch (const UserError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].key == "position.fraction");
  }
}
