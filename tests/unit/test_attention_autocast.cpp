// Under bf16 autocast the math inner attention (the fp32 reference) really
// computes in fp32: autocast must not send its matmuls back to bf16.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <limits>

#include "model/attention/inner.h"
#include "runtime/autocast.h"

using namespace attnlab;

namespace {

torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  auto s = torch::matmul(q, k.transpose(-1, -2)) * scale;
  const int64_t t = q.size(2);
  auto mask = torch::ones({t, t}, torch::kBool).tril();
  s = s.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::matmul(torch::softmax(s, -1), v);
}

}  // namespace

TEST_CASE("the math attention computes in fp32 under bf16 autocast on the CPU", "[attention][autocast]") {
  torch::manual_seed(8);
  // bf16-representable fp32 inputs, large enough logits that bf16 arithmetic shows.
  auto make = [] { return (torch::randn({2, 4, 96, 64}) * 2.0).to(torch::kBFloat16).to(torch::kFloat32); };
  auto q = make(), k = make(), v = make();
  const double scale = 0.125;
  const auto exact = reference(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64), scale);

  torch::Tensor out, in_bf16;
  {
    AutocastScope autocast(torch::kCPU, torch::kBFloat16);
    model::InnerPath ran = model::InnerPath::kNone;
    out = model::inner_attention(q, k, v, scale, {}, model::Backend::kMath, &ran);
    CHECK(ran == model::InnerPath::kMath);
    in_bf16 = reference(q, k, v, scale);  // the same formula, left to autocast
  }
  CHECK(out.scalar_type() == torch::kFloat32);
  const double err = (out.to(torch::kFloat64) - exact).abs().max().item<double>();
  const double err_bf16 = (in_bf16.to(torch::kFloat64) - exact).abs().max().item<double>();
  INFO("max error: math path " << err << ", bf16 autocast " << err_bf16);
  CHECK(err < 1e-5);
  CHECK(err_bf16 > 1e-3);  // what the test would see if the math path ran in bf16
}
