// Learning-rate schedules: warmup, cosine, wsd and constant at known points.
#include <catch2/catch.hpp>

#include "train/schedule.h"

using attnlab::OptimConfig;
using attnlab::train::learning_rate;
using Catch::Matchers::WithinRel;
using Catch::Matchers::WithinAbs;

namespace {
OptimConfig optim(const std::string& schedule) {
  OptimConfig o;
  o.lr = 1e-3;
  o.min_lr = 1e-4;
  o.warmup_steps = 10;
  o.schedule = schedule;
  return o;
}
}  // namespace

TEST_CASE("warmup rises linearly to the peak", "[train][schedule]") {
  for (auto kind : {"cosine", "wsd", "constant"}) {
    auto o = optim(kind);
    CHECK_THAT(learning_rate(o, 0, 110), WithinRel(1e-4, 1e-12));
    CHECK_THAT(learning_rate(o, 4, 110), WithinRel(5e-4, 1e-12));
    CHECK_THAT(learning_rate(o, 9, 110), WithinRel(1e-3, 1e-12));
  }
}

TEST_CASE("cosine decays from the peak to min_lr, passing the midpoint halfway", "[train][schedule]") {
  auto o = optim("cosine");
  CHECK_THAT(learning_rate(o, 10, 110), WithinRel(1e-3, 1e-12));
  CHECK_THAT(learning_rate(o, 60, 110), WithinRel(5.5e-4, 1e-12));
  CHECK_THAT(learning_rate(o, 110, 110), WithinRel(1e-4, 1e-12));
  CHECK(learning_rate(o, 30, 110) > learning_rate(o, 31, 110));
}

TEST_CASE("wsd holds the peak, then cools down linearly over the last 20%", "[train][schedule]") {
  auto o = optim("wsd");
  CHECK_THAT(learning_rate(o, 89, 110), WithinRel(1e-3, 1e-12));
  CHECK_THAT(learning_rate(o, 100, 110), WithinRel(5.5e-4, 1e-12));
  CHECK_THAT(learning_rate(o, 110, 110), WithinAbs(1e-4, 1e-15));
}

TEST_CASE("constant stays at the peak after warmup", "[train][schedule]") {
  auto o = optim("constant");
  CHECK(learning_rate(o, 50, 110) == 1e-3);
  CHECK(learning_rate(o, 109, 110) == 1e-3);
}
