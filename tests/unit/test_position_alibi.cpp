// ALiBi slopes for head counts that are not a power of two, against the
// reference code of Press et al. (ofirpress/attention_with_linear_biases,
// get_slopes): the slopes of the largest power of two p below n, then every
// other slope of 2p, first n - p of them. Values below are that function's
// output written out as powers of two.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "model/position/simple.h"

using namespace attnlab::model;

namespace {
std::vector<double> powers_of_two(const std::vector<double>& exponents) {
  std::vector<double> out;
  for (double e : exponents) out.push_back(std::pow(2.0, e));
  return out;
}
}  // namespace

TEST_CASE("ALiBi slopes for 3, 6 and 12 heads equal the reference get_slopes", "[position]") {
  // n=3: get_slopes_power_of_2(2) = [2^-4, 2^-8], then get_slopes(4)[0::2][:1] = [2^-2].
  CHECK(alibi_slopes(3) == powers_of_two({-4, -8, -2}));
  // n=6: get_slopes_power_of_2(4) + get_slopes(8)[0::2][:2].
  CHECK(alibi_slopes(6) == std::vector<double>{0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125});
  // n=12: get_slopes_power_of_2(8) = 2^-1..2^-8, then 16's slopes 2^(-i/2), i = 1, 3, 5, 7.
  const auto twelve = alibi_slopes(12);
  const auto expected = powers_of_two({-1, -2, -3, -4, -5, -6, -7, -8, -0.5, -1.5, -2.5, -3.5});
  REQUIRE(twelve.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("head " << i);
    CHECK_THAT(twelve[i], Catch::WithinRel(expected[i], 1e-14));
  }
}

TEST_CASE("ALiBi's score bias gives head h the slope of the reference's head h", "[position]") {
  Alibi alibi;
  // One query at position 4 over keys 0..4: key 0 is 4 back.
  auto bias = alibi.score_bias(6, 4, 1, 5, torch::TensorOptions().dtype(torch::kFloat64));
  const std::vector<double> slopes{0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
  for (int64_t h = 0; h < 6; ++h) {
    INFO("head " << h);
    CHECK(bias[h][0][0].item<double>() == -4 * slopes[static_cast<size_t>(h)]);
    CHECK(bias[h][0][4].item<double>() == 0.0);
  }
}
