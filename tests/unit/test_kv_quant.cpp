// Quantized KV caches (attention.cache_dtype int8 and fp8_e4m3): the round
// trip stays within the format's error bound per element, scales are per
// vector (an outlier moves only its own), an int8 cache really stores int8 and
// allocates what its layout says, cached decode stays close to the fp32 cache
// without being identical to it, and the schema offers exactly the formats.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "config/schema.h"
#include "config_test_util.h"
#include "core/error.h"
#include "model/attention/registry.h"
#include "model/cache_format.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tensor_match.h"

using namespace attnlab;
using namespace attnlab::model;
using attnlab::test::rel_error;
using attnlab::test::tiny_config;

namespace {

// Random vectors whose magnitudes span six decades, so that scales differ from
// vector to vector and some fall below fp16's smallest normal times qmax.
torch::Tensor spread(const std::vector<int64_t>& shape) {
  auto x = torch::randn(shape, torch::kFloat32);
  auto sizes = x.sizes().vec();
  sizes.back() = 1;
  return x * torch::pow(10.0, torch::empty(sizes).uniform_(-4.0, 2.0));
}

// Every registered attention kind, each at its first test configuration.
std::vector<std::string> registry_kinds() {
  std::vector<std::string> kinds;
  for (const auto& entry : attention_registry()) kinds.push_back(entry.kind);
  return kinds;
}

const std::vector<std::vector<int64_t>> kShapes{{3, 5, 16}, {2, 7, 4, 32}, {1, 1, 1}, {4, 64}, {2, 3, 2, 6, 8}};

}  // namespace

TEST_CASE("int8 round trip: every element within half a step of its vector's fp16 scale", "[kv][quant]") {
  torch::manual_seed(11);
  const auto int8 = parse_cache_format("int8");
  for (const auto& shape : kShapes) {
    INFO("shape " << torch::IntArrayRef(shape));
    const auto x = spread(shape);
    const auto q = quantize(x, int8);
    CHECK(q.values.scalar_type() == torch::kInt8);
    CHECK(q.scales.scalar_type() == torch::kFloat16);
    auto scale_shape = shape;
    scale_shape.pop_back();
    CHECK(q.scales.sizes() == torch::IntArrayRef(scale_shape));  // one scale per vector
    CHECK(q.values.abs().max().item<int>() <= 127);

    // The scale is absmax / 127 rounded to fp16 (relative error <= 2^-11), or
    // fp16's smallest normal when that is smaller.
    const auto s = q.scales.to(torch::kFloat64);
    const auto ideal = x.to(torch::kFloat64).abs().amax(-1) / 127.0;
    const auto expected = torch::maximum(ideal, torch::full_like(ideal, std::ldexp(1.0, -14)));
    CHECK(((s - expected).abs() <= expected * std::ldexp(1.0, -11)).all().item<bool>());

    // Round to nearest: |x - deq| <= s/2; an element at the absmax may be
    // clamped when rounding the scale down made |x|/s exceed 127, which costs
    // at most |x| * 2^-11 (bounded here by 2^-10).
    const auto deq = dequantize(q.values, q.scales, torch::kFloat64);
    const auto xd = x.to(torch::kFloat64);
    const auto bound = s.unsqueeze(-1) * 0.5 + xd.abs() * std::ldexp(1.0, -10) + 1e-12;
    const auto err = (xd - deq).abs();
    INFO("worst error / bound " << (err / bound).max().item<double>());
    CHECK((err <= bound).all().item<bool>());
  }
}

TEST_CASE("fp8_e4m3 round trip: relative error of 3 mantissa bits, subnormals to an absolute step", "[kv][quant]") {
  torch::manual_seed(12);
  const auto fp8 = parse_cache_format("fp8_e4m3");
  CHECK(fp8.qmax == 448.0);
  for (const auto& shape : kShapes) {
    INFO("shape " << torch::IntArrayRef(shape));
    const auto x = spread(shape);
    const auto q = quantize(x, fp8);
    CHECK(q.values.scalar_type() == torch::kFloat8_e4m3fn);
    const auto stored = q.values.to(torch::kFloat32);
    CHECK_FALSE(stored.isnan().any().item<bool>());  // nothing cast beyond 448
    CHECK(stored.abs().max().item<float>() <= 448.0f);
    // Normal e4m3 values round to within 2^-4 relative; below 2^-6 (subnormal)
    // the step is 2^-9, so within 2^-10 of the scale; clamping an absmax
    // element after the fp16 scale rounded down costs at most |x| * 2^-11.
    const auto s = q.scales.to(torch::kFloat64).unsqueeze(-1);
    const auto xd = x.to(torch::kFloat64);
    const auto err = (xd - dequantize(q.values, q.scales, torch::kFloat64)).abs();
    const auto bound = xd.abs() * (std::ldexp(1.0, -4) + std::ldexp(1.0, -10)) + s * std::ldexp(1.0, -10) + 1e-12;
    INFO("worst error / bound " << (err / bound).max().item<double>());
    CHECK((err <= bound).all().item<bool>());
    // And it is a real rounding, not a lossless copy.
    CHECK((err > 0).any().item<bool>());
  }
}

TEST_CASE("zero vectors quantize to zeros with a finite scale, no NaN", "[kv][quant]") {
  const auto format = GENERATE(as<std::string>{}, "int8", "fp8_e4m3");
  INFO(format);
  torch::manual_seed(13);
  auto x = torch::randn({2, 3, 8});
  x.index_put_({1, 2}, torch::zeros({8}));  // one all-zero vector among random ones
  const auto q = quantize(x, parse_cache_format(format));
  const auto deq = dequantize(q.values, q.scales, torch::kFloat32);
  CHECK_FALSE(deq.isnan().any().item<bool>());
  CHECK_FALSE(q.scales.to(torch::kFloat32).isnan().any().item<bool>());
  CHECK((q.scales.to(torch::kFloat32) > 0).all().item<bool>());
  CHECK(torch::equal(deq.index({1, 2}), torch::zeros({8})));
  const auto all_zero = quantize(torch::zeros({4, 5}), parse_cache_format(format));
  CHECK(torch::equal(dequantize(all_zero.values, all_zero.scales, torch::kFloat32), torch::zeros({4, 5})));
}

TEST_CASE("an outlier changes only its own vector's scale and values", "[kv][quant]") {
  const auto name = GENERATE(as<std::string>{}, "int8", "fp8_e4m3");
  INFO(name);
  const auto format = parse_cache_format(name);
  torch::manual_seed(14);
  const auto x = torch::randn({2, 6, 4, 16});
  auto y = x.clone();
  y.index_put_({1, 3, 2, 5}, 1e4);  // one huge element in vector [1, 3, 2]
  const auto qx = quantize(x, format), qy = quantize(y, format);
  const auto dx = dequantize(qx.values, qx.scales, torch::kFloat32);
  const auto dy = dequantize(qy.values, qy.scales, torch::kFloat32);
  auto others = torch::ones({2, 6, 4}, torch::kBool);
  others.index_put_({1, 3, 2}, false);
  CHECK(torch::equal(qx.scales.masked_select(others), qy.scales.masked_select(others)));
  CHECK(torch::equal(dx.masked_select(others.unsqueeze(-1).expand_as(dx)),
                     dy.masked_select(others.unsqueeze(-1).expand_as(dy))));
  // Its own vector now has a scale near 1e4 / qmax, and its small elements lose precision.
  CHECK(qy.scales.index({1, 3, 2}).item<float>() > 1000 * qx.scales.index({1, 3, 2}).item<float>());
  CHECK_FALSE(torch::allclose(dy.index({1, 3, 2}).narrow(0, 0, 5), x.index({1, 3, 2}).narrow(0, 0, 5), 1e-3, 1e-3));
}

TEST_CASE("an int8 cache stores int8 values and fp16 scales, and allocates its layout's bytes", "[kv][quant]") {
  // k[2,4] + ckv[6]: 2 + 1 vectors per token, so 14 bytes of values and 6 of scales.
  CacheLayout layout{{{"k", {2, 4}}, {"ckv", {6}}}};
  CHECK(layout.bytes_per_token(parse_cache_format("int8")) == 14 + 3 * 2);
  CHECK(layout.scale_bytes_per_token(parse_cache_format("int8")) == 6);
  CHECK(layout.bytes_per_token(parse_cache_format("fp8_e4m3")) == 14 + 3 * 2);
  CHECK(layout.bytes_per_token(torch::kBFloat16) == 28);
  CHECK(layout.scale_bytes_per_token(torch::kFloat32) == 0);

  LayerCache cache(layout, 1, 5, parse_cache_format("int8"), torch::kCPU);
  CHECK(cache.storage(0).scalar_type() == torch::kInt8);
  CHECK(cache.storage(1).scalar_type() == torch::kInt8);
  CHECK(cache.scales(0).sizes() == torch::IntArrayRef({1, 5, 2}));
  CHECK(cache.scales(1).sizes() == torch::IntArrayRef({1, 5}));
  CHECK(cache.bytes() == 5 * (14 + 6));  // 5 slots of int8 values plus fp16 scales

  // absmax 1.27 gives scale fp16(0.01) = 0.01000214; x / scale rounds to these.
  auto k = torch::tensor({1.27f, -0.635f, 0.127f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({1, 1, 2, 4});
  auto ckv = torch::tensor({-2.54f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({1, 1, 6});
  const auto views = cache.append({k, ckv});
  const auto stored_k = cache.storage(0).index({0, 0}).to(torch::kInt32);
  CHECK(torch::equal(stored_k, torch::tensor({127, -63, 13, 0, 0, 0, 0, 0}, torch::kInt32).view({2, 4})));
  CHECK(cache.storage(1).index({0, 0, 0}).item<int>() == -127);
  CHECK(cache.scales(0).index({0, 0, 0}).item<float>() == static_cast<float>(c10::Half(0.01f)));
  CHECK(cache.scales(0).index({0, 0, 1}).item<float>() == static_cast<float>(c10::Half(std::ldexp(1.0f, -14))));
  // What attention reads: dequantized, in the new parts' dtype, one token long.
  CHECK(views[0].scalar_type() == torch::kFloat32);
  CHECK(views[0].sizes() == torch::IntArrayRef({1, 1, 2, 4}));
  CHECK_THAT(views[0], test::AllClose(k, 1e-2));
  CHECK_FALSE(torch::equal(views[0], k));
}

TEST_CASE("cached decode through an int8 or fp8 cache stays close to the fp32 cache, and is not identical",
          "[kv][quant]") {
  const auto kind = GENERATE(from_range(registry_kinds()));
  const auto name = GENERATE(as<std::string>{}, "int8", "fp8_e4m3");
  INFO(kind << " " << name);
  torch::manual_seed(15);
  TransformerLM lm(tiny_config(kind));
  lm->eval();
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(50, {2, 12}, torch::kLong);
  const auto full = lm->forward(tokens);
  auto decode = [&](const CacheFormat& format) {
    auto cache = lm->make_cache(2, 12, format);
    std::vector<torch::Tensor> steps;
    for (int64_t t = 0; t < 12; ++t) steps.push_back(lm->forward(tokens.narrow(1, t, 1), cache));
    return torch::cat(steps, 1);
  };
  const auto fp32 = decode(torch::kFloat32);
  const auto quant = decode(parse_cache_format(name));
  CHECK(rel_error(fp32, full) < 1e-5);
  // Per-vector absmax at 8 bits: about 0.4% (int8) or 6% (e4m3) of a vector's
  // absmax per element at worst. On this random model's logits the measured
  // worst relative errors were about 1e-3 (int8) and 5e-3 (fp8) for every
  // kind; the tolerances leave room for seeds, not for a broken quantizer.
  const double tolerance = name == "int8" ? 5e-3 : 2e-2;
  const double err = rel_error(quant, fp32);
  INFO("relative error against the fp32 cache " << err);
  CHECK(err < tolerance);
  CHECK(rel_error(quant, full) < tolerance);
  CHECK_FALSE(torch::equal(quant, fp32));  // quantization really happened
  CHECK(err > 1e-6);
}

TEST_CASE("an unknown cache_dtype is a UserError naming attention.cache_dtype and the valid names", "[kv][quant]") {
  CHECK_THROWS_AS(parse_cache_format("int4"), UserError);
  CHECK_THROWS_WITH(parse_cache_format("int4"), Catch::Contains("attention.cache_dtype") && Catch::Contains("int4") &&
                                                    Catch::Contains("fp32, bf16, fp16, int8, fp8_e4m3"));
  auto r = test::run_attnlab("--cfg attention.cache_dtype=int4", ATTNLAB_SOURCE_DIR);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("attention.cache_dtype") && Catch::Contains("int8"));
  auto ok = test::run_attnlab("--cfg attention.cache_dtype=fp8_e4m3", ATTNLAB_SOURCE_DIR);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Catch::Contains("cache_dtype: fp8_e4m3"));
}

TEST_CASE("the schema offers exactly the cache formats the model can allocate", "[kv][quant][config]") {
  // The config library has no LibTorch, so it keeps its own list: the two must agree.
  const auto* spec = config::find_key("attention.cache_dtype");
  REQUIRE(spec != nullptr);
  for (const auto& name : spec->options) {
    INFO(name);
    CHECK(parse_cache_format(name).name == name);
  }
  for (const auto& name : cache_format_names()) {
    INFO(name);
    CHECK(std::find(spec->options.begin(), spec->options.end(), name) != spec->options.end());
  }
  CHECK(spec->options.size() == cache_format_names().size());
  // Plain dtypes convert to their formats, as the old make_cache(dtype) calls expect.
  CHECK(CacheFormat(torch::kBFloat16).name == "bf16");
  CHECK_FALSE(CacheFormat(torch::kFloat16).scaled);
  CHECK_THROWS_AS(CacheFormat(torch::kInt8), Error);
}
