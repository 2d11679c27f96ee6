// Synthetic recall tasks: MQAR sequences have Zoology's structure (checked
// position by position against the task's definition, not the generator's
// code), query gaps follow the power law, passkey needles sit at their depth,
// and streams are deterministic and resumable.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <set>

#include "data/synthetic.h"

using namespace attnlab;
using namespace attnlab::data;

namespace {
SyntheticSpec mqar(int64_t vocab, int64_t len, int64_t pairs, int64_t queries, double power_a = 0.01) {
  SyntheticSpec s;
  s.task = "mqar";
  s.vocab_size = vocab;
  s.seq_len = len;
  s.num_pairs = pairs;
  s.num_queries = queries;
  s.power_a = power_a;
  return s;
}
std::vector<int64_t> vec(const torch::Tensor& t) {
  auto c = t.contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}
}  // namespace

TEST_CASE("MQAR: pairs up front, each target is the value bound to the key at that position", "[data][synthetic]") {
  const auto spec = mqar(64, 64, 8, 6);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    auto [x_t, y_t] = mqar_example(spec, seed);
    auto x = vec(x_t), y = vec(y_t);
    REQUIRE(x.size() == 64);
    REQUIRE(y.size() == 64);
    std::map<int64_t, int64_t> bound;
    std::set<int64_t> values;
    for (int i = 0; i < 8; ++i) {
      const int64_t k = x[2 * i], v = x[2 * i + 1];
      CHECK((k >= 1 && k < 32));
      CHECK((v >= 32 && v < 64));
      CHECK(bound.emplace(k, v).second);  // distinct keys
      CHECK(values.insert(v).second);     // distinct values
    }
    int targets = 0;
    std::set<int64_t> queried;
    for (int p = 0; p < 64; ++p) {
      if (y[p] == kIgnoreIndex) continue;
      ++targets;
      CHECK(p >= 16);
      CHECK((p - 16) % 2 == 0);  // queries at even offsets into the query region
      REQUIRE(bound.contains(x[p]));
      CHECK(y[p] == bound[x[p]]);
      CHECK(queried.insert(x[p]).second);  // each key queried at most once
    }
    CHECK(targets == 6);
    for (auto t : x) CHECK((t >= 0 && t < 64));
  }
  // Deterministic in the seed.
  CHECK(torch::equal(mqar_example(spec, 5).first, mqar_example(spec, 5).first));
  CHECK_FALSE(torch::equal(mqar_example(spec, 5).first, mqar_example(spec, 6).first));
}

TEST_CASE("MQAR: query gaps follow p(g) ~ (g+1)^(a-1)", "[data][synthetic]") {
  // One query per sequence, so each gap is one draw of the distribution.
  for (double a : {0.01, 1.0}) {
    const auto spec = mqar(64, 40, 4, 1, a);  // 8 context tokens, space = 16 gaps
    std::vector<double> count(16, 0.0);
    const int n = 6000;
    for (int s = 0; s < n; ++s) {
      auto y = vec(mqar_example(spec, static_cast<uint64_t>(s)).second);
      for (int p = 0; p < 40; ++p)
        if (y[p] != kIgnoreIndex) count[static_cast<size_t>((p - 8) / 2)] += 1;
    }
    double z = 0.0;
    for (int g = 0; g < 16; ++g) z += std::pow(g + 1.0, a - 1.0);
    for (int g : {0, 1, 7, 15}) {
      const double p = std::pow(g + 1.0, a - 1.0) / z;
      INFO("a " << a << " gap " << g);
      CHECK(std::abs(count[static_cast<size_t>(g)] / n - p) < 4.0 * std::sqrt(p * (1 - p) / n) + 1e-3);
    }
  }
}

TEST_CASE("passkey: the needle sits at its depth and the targets are its digits after QUERY", "[data][synthetic]") {
  SyntheticSpec spec;
  spec.task = "passkey";
  spec.vocab_size = 40;
  spec.seq_len = 50;
  spec.passkey_digits = 5;
  const int64_t n_filler = 51 - 12;
  for (double depth : {0.0, 0.25, 0.5, 1.0}) {
    auto [x_t, y_t] = passkey_example(spec, depth, 9);
    auto x = vec(x_t), y = vec(y_t);
    const auto at = static_cast<size_t>(std::llround(depth * n_filler));
    INFO("depth " << depth);
    REQUIRE(x[at] == kPasskeyMarker);
    std::vector<int64_t> key(x.begin() + static_cast<long>(at) + 1, x.begin() + static_cast<long>(at) + 6);
    for (auto d : key) CHECK((d >= 0 && d <= 9));
    // The query marker is followed by the key; the last input is the 4th digit,
    // its target the 5th (targets are inputs shifted by one).
    CHECK(x[50 - 5] == kPasskeyQuery);
    std::vector<int64_t> answer;
    for (size_t p = 0; p < 50; ++p)
      if (y[p] != kIgnoreIndex) answer.push_back(y[p]);
    CHECK(answer == key);
    for (size_t p = 0; p < 50; ++p)
      if (p != at && p != 45 && !(p > at && p <= at + 5) && p < 45) CHECK(x[p] >= kPasskeyFillerStart);
  }
}

TEST_CASE("synthetic streams are resumable and validation is a stream of its own", "[data][synthetic]") {
  const auto spec = mqar(32, 32, 4, 4);
  SyntheticBatcher a(spec, 3, 1), b(spec, 3, 1);
  a.next();
  auto second = a.next();
  b.set_state(1);
  CHECK(torch::equal(b.next().first, second.first));
  auto val = synthetic_validation(spec, 2, 3, 1);
  REQUIRE(val.size() == 2);
  CHECK_FALSE(torch::equal(val[0].first, SyntheticBatcher(spec, 3, 1).next().first));
  CHECK(torch::equal(val[1].first, synthetic_validation(spec, 2, 3, 1)[1].first));
}
